"""Expert and partner profiles: who can advise on ideas, which organisations seek partners abroad."""
