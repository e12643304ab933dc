// Boosted navigation swaps only <body>: keep <html lang> in step with the page that arrived,
// since logging in or out, or switching language, may change it.
document.addEventListener("htmx:beforeSwap", (event) => {
  const match = /<html[^>]*\slang="([a-zA-Z-]+)"/.exec(event.detail.xhr.responseText || "");
  if (match) {
    document.documentElement.lang = match[1];
  }
});
