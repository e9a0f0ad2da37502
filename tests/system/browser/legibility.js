// The lowest text contrast inside `root`, with where it is (WCAG contrast ratio, 1..21).
// A text's colour is composited with its alpha and its ancestors' opacity over the
// background it really sits on (translucent backgrounds composited up to the first opaque one).
(root) => {
  const parse = (s) => {
    const m = s && s.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(parseFloat);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => top.slice(0, 3).map((c, i) => c * top[3] + under[i] * (1 - top[3]));
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let out = [255, 255, 255];
    for (let i = layers.length - 1; i >= 0; i--) out = over(layers[i], out);
    return out;
  };
  const luminance = (rgb) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
  };
  const ratio = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  let worst = { ratio: 99, text: "", colour: "", background: "" };
  let texts = 0;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!el || !node.textContent.trim() || !el.getClientRects().length) continue;
    let opacity = 1;
    for (let e = el; e && e !== document.body; e = e.parentElement) opacity *= parseFloat(getComputedStyle(e).opacity);
    const colour = parse(getComputedStyle(el).color);
    const bg = background(el);
    const seen = over([colour[0], colour[1], colour[2], colour[3] * opacity], bg);
    const r = ratio(seen, bg);
    texts++;
    if (r < worst.ratio) worst = { ratio: r, text: node.textContent.trim().slice(0, 60), colour: getComputedStyle(el).color, background: `rgb(${bg.map(Math.round)})` };
  }
  return { ...worst, texts, here: `rgb(${background(root).map(Math.round)})` };
}
