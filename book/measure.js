// Measures a page of the built book in headless Chromium (book/screenshots.py injects it).
// Once the page has loaded, MathJax has typeset and the widgets had time to render, it writes
// what it measured as JSON into a new pre element (id cvgad-measure) for `chromium --dump-dom`.
(function () {
  "use strict";

  const SCROLLS = new Set(["auto", "scroll"]);
  const CODE = "pre, code, script, style, mjx-container, .cell_input, textarea";

  function rect(el) {
    const r = el.getBoundingClientRect();
    return { left: r.left, right: r.right, width: r.width, height: r.height, top: r.top + window.scrollY };
  }

  // Display equations: the typeset width against the width of their line, less room on both
  // sides for the equation number (the equation is centred; the number sits on the right).
  function equations() {
    return [...document.querySelectorAll("mjx-container[display='true']")].map((c) => {
      const host = c.closest("div.math") || c.parentElement;
      const eqno = host.querySelector(".eqno");
      const numberWidth = eqno ? eqno.getBoundingClientRect().width : 0;
      const math = c.querySelector("mjx-math") || c;
      return {
        number: eqno ? eqno.textContent.replace(/[#\s]/g, "") : "",
        id: host.id || "",
        width: Math.ceil(math.getBoundingClientRect().width),
        available: Math.floor(host.clientWidth - 2 * numberWidth),
      };
    });
  }

  // Elements that reach past the right edge of the text column without a scrolling box
  // around them: cut off, or covering the sidebar.
  function stickingOut(column) {
    const out = [];
    for (const el of document.querySelectorAll("article img, article table, article pre, article mjx-container, article .jupyter-widgets, article svg")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= column.right + 1) continue;
      let scrolled = false;
      for (let a = el.parentElement; a && a.tagName !== "ARTICLE"; a = a.parentElement) {
        const box = a.getBoundingClientRect();
        if (SCROLLS.has(getComputedStyle(a).overflowX) && box.right <= column.right + 1) { scrolled = true; break; }
      }
      if (!scrolled) out.push(`${el.tagName.toLowerCase()} ${Math.round(r.width)} px wide, right edge ${Math.round(r.right - column.right)} px past the column`);
    }
    return out;
  }

  // Text outside math and code that still holds TeX commands: math that MathJax never saw.
  function rawTex() {
    const found = [];
    const walker = document.createTreeWalker(document.querySelector("article") || document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest(CODE)) continue;
      const hit = node.textContent.match(/\\(?:math[a-z]+|frac|operatorname|sum|int|log|mid|sigma|mu|top|lVert|big)\b/);
      if (hit) found.push(node.textContent.trim().slice(0, 80));
    }
    return found;
  }

  // Text a reader sees, outside code and math, gathered per block (paragraph, list item, cell):
  // Markdown left unrendered (a table's pipes, code's backticks, bold's asterisks) and symbols
  // that a page font may lack (emoji) show here as literal characters.
  const BLOCK = "p, li, td, th, dt, dd, h1, h2, h3, h4, h5, h6, caption, figcaption, div";
  const UNRENDERED = [
    [/\|\s*:?[-\u2013\u2014]+:?\s*\|/, "a Markdown table rule"],
    [/(?:^|\s)\|\s+\S[^|]*\s\|\s+\S[^|]*\s\|(?:\s|$)/, "a Markdown table row"],
    [/`/, "a backtick"],
    [/\*\*\S/, "Markdown bold"],
  ];
  const PICTOGRAPH = /(?![\u00a9\u00ae\u2122])\p{Extended_Pictographic}/u;

  function blockTexts() {
    const texts = new Map();
    const walker = document.createTreeWalker(document.querySelector("article") || document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest(CODE)) continue;
      const block = node.parentElement.closest(BLOCK) || document.body;
      texts.set(block, (texts.get(block) || "") + node.textContent);
    }
    return [...texts.values()].map((t) => t.replace(/\s+/g, " ").trim()).filter((t) => t);
  }

  function unrendered(texts) {
    const found = [];
    for (const text of texts) {
      for (const [pattern, what] of UNRENDERED) {
        const hit = text.match(pattern);
        if (hit) found.push(`${what}: ...${text.slice(Math.max(0, hit.index - 30), hit.index + 50)}...`);
      }
    }
    return found;
  }

  function pictographs(texts) {
    return texts.filter((t) => PICTOGRAPH.test(t)).map((t) => `${t.match(PICTOGRAPH)[0]} in: ${t.slice(0, 60)}`);
  }

  // Paragraphs whose every visible letter is bold: emphasis that has lost its meaning.
  function boldParagraphs() {
    const found = [];
    for (const p of document.querySelectorAll("article p")) {
      if (p.closest(".admonition-title, .caption, caption, nav, summary, table, dt")) continue;  // a cell may be bold
      const walker = document.createTreeWalker(p, NodeFilter.SHOW_TEXT);
      let letters = 0;
      let bold = true;
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!/\p{L}/u.test(node.textContent) || node.parentElement.closest("mjx-container")) continue;
        letters += node.textContent.trim().length;
        if (parseInt(getComputedStyle(node.parentElement).fontWeight, 10) < 600) { bold = false; break; }
      }
      if (bold && letters > 0) found.push(p.textContent.replace(/\s+/g, " ").trim().slice(0, 80));
    }
    return found;
  }

  // Tables and code blocks whose content is wider than the box that shows them: a reader sees
  // them cut at the right edge (and must find a scroll bar to read the rest).
  function cutOff() {
    const found = [];
    for (const el of document.querySelectorAll("article table, article pre")) {
      if (el.getBoundingClientRect().width === 0) continue;
      let box = null;
      for (let a = el; a && a.tagName !== "ARTICLE"; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== "visible") { box = a; break; }
      }
      if (box === null) continue;  // nothing clips it: stickingOut reports it if it is too wide
      const hidden = box === el ? el.scrollWidth - el.clientWidth : el.getBoundingClientRect().right - box.getBoundingClientRect().right;
      if (hidden > 1) {
        const first = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 50);
        found.push(`${el.tagName.toLowerCase()} cut by ${Math.round(hidden)} px: ${first}`);
      }
    }
    return found;
  }

  // Figures: shown at the width they were made for (the width myst-nb sets from a retina PNG's
  // metadata, else their own width), or scaled down to fit the column.
  function images() {
    return [...document.querySelectorAll("article img")].map((img) => {
      const intended = parseFloat(img.style.width) || Number(img.getAttribute("width")) || img.naturalWidth;
      return { src: (img.getAttribute("src") || "").slice(0, 60), shown: Math.round(img.getBoundingClientRect().width), intended, natural: img.naturalWidth };
    });
  }

  // Share of the page that is code: the visible code cells (a folded one keeps its layout box
  // inside its closed <details>, but shows nothing), and the toggles of folded ones.
  function code() {
    const visible = [...document.querySelectorAll("div.cell_input")]
      .filter((el) => !el.closest("details:not([open])"))
      .reduce((sum, el) => sum + el.getBoundingClientRect().height, 0);
    const toggles = [...document.querySelectorAll("details.above-input:not([open]) > summary")].reduce((sum, el) => sum + el.getBoundingClientRect().height, 0);
    return { visible: Math.round(visible), toggles: Math.round(toggles), page: document.documentElement.scrollHeight };
  }

  function measure() {
    const article = document.querySelector("article") || document.body;
    const column = article.getBoundingClientRect();
    const texts = blockTexts();
    const result = {
      column: { left: column.left, right: column.right, width: column.width },
      typeset: document.querySelectorAll("mjx-container").length,
      texErrors: document.querySelectorAll("mjx-merror").length,
      equations: equations(),
      stickingOut: stickingOut(column),
      rawTex: rawTex(),
      unrendered: unrendered(texts),
      pictographs: pictographs(texts),
      boldParagraphs: boldParagraphs(),
      cutOff: cutOff(),
      images: images(),
      widgets: document.querySelectorAll(".widget-subarea").length,  // one per rendered widget view
      code: code(),
      marks: [...document.querySelectorAll("[data-cvgad-mark]")].map((el) => ({ mark: el.dataset.cvgadMark, ...rect(el) })),
    };
    const pre = document.createElement("pre");
    pre.id = "cvgad-measure";
    pre.textContent = JSON.stringify(result);
    document.body.appendChild(pre);
  }

  window.addEventListener("load", () => {
    const typeset = window.MathJax && MathJax.startup && MathJax.startup.promise;
    Promise.resolve(typeset)
      .then(() => document.fonts.ready)
      .then(() => (window.cvgadBeforeMeasure ? window.cvgadBeforeMeasure() : null))
      .then(() => setTimeout(measure, 2000));
  });
})();
