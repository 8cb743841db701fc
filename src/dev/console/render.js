// Renders LINE message objects (the field names of LINE's Messaging API) as DOM elements.
// `act(action)` is called when the user taps any action: a button, a template action, an
// imagemap area, a tappable flex box. Nothing here loads from the network: images and stickers
// are labelled placeholders carrying their URL.
"use strict";

const Render = (() => {
  // LINE's keyword scales, in CSS pixels (as the Flex Message Simulator draws them).
  const SPACING = { none: 0, xs: 2, sm: 4, md: 8, lg: 12, xl: 16, xxl: 20 };
  const TEXT_SIZE = { xxs: 11, xs: 13, sm: 14, md: 16, lg: 19, xl: 22, xxl: 29,
    "3xl": 35, "4xl": 48, "5xl": 74 };
  const IMAGE_SIZE = { xxs: 40, xs: 60, sm: 80, md: 100, lg: 120, xl: 140, xxl: 160,
    "3xl": 180, "4xl": 200, "5xl": 220 };
  const BUBBLE_WIDTH = { nano: 120, micro: 160, deca: 220, hecto: 241, kilo: 260,
    mega: 300, giga: 500 };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // A keyword of `scale`, or a length LINE allows as is ("10px", "5%").
  function length(value, scale) {
    if (value === undefined || value === null) return null;
    if (scale && value in scale) return scale[value] + "px";
    return /^-?\d+(\.\d+)?(px|%)$/.test(value) ? value : null;
  }

  // What a tap on `action` does, wired to a focusable element.
  function tappable(node, action, act) {
    if (!action) return node;
    node.classList.add("tappable");
    if (!/^(BUTTON|A)$/.test(node.tagName)) {
      node.tabIndex = 0;
      node.setAttribute("role", "button");
      node.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); act(action); }
      });
    }
    node.title = describe(action);
    node.addEventListener("click", (e) => { e.stopPropagation(); act(action); });
    return node;
  }

  function describe(action) {
    switch (action.type) {
      case "message": return `says “${action.text}”`;
      case "postback": return `postback ${action.data}`;
      case "datetimepicker": return `${action.mode || "datetime"} picker, postback ${action.data}`;
      case "uri": return `opens ${action.uri || action.linkUri}`;
      default: return action.type;
    }
  }

  function placeholder(kind, url, ratio) {
    const box = el("div", "placeholder " + kind);
    if (ratio) box.style.aspectRatio = ratio.replace(":", " / ");
    box.append(el("span", "placeholder-kind", kind));
    if (url) box.append(el("span", "placeholder-url", url));
    return box;
  }

  // ---- flex ----------------------------------------------------------------------------

  // Margin, flex, alignment and position: what a component's parent box decides about it.
  function place(node, c, parent, first) {
    const horizontal = parent !== "vertical";
    // Icons keep their size; in a row everything else shares it (flex 1), in a column not.
    const flex = c.type === "icon" ? 0 : c.flex !== undefined ? c.flex : (horizontal ? 1 : 0);
    node.style.flex = flex > 0 ? `${flex} 0 0` : "0 0 auto";
    const margin = length(c.margin, SPACING);
    if (margin && !first) node.style[horizontal ? "marginLeft" : "marginTop"] = margin;
    if (c.align) node.classList.add("align-" + c.align);
    if (c.gravity) node.classList.add("gravity-" + c.gravity);
    if (c.position === "absolute") node.style.position = "absolute";
    for (const side of ["Top", "Bottom", "Start", "End"]) {
      const v = length(c["offset" + side], SPACING);
      const css = { Top: "top", Bottom: "bottom", Start: "left", End: "right" }[side];
      if (v) node.style[css] = v;
    }
    return node;
  }

  function flexBox(box, act) {
    const layout = box.layout || "vertical";
    const node = el("div", `flex-box ${layout}`);
    const style = node.style;
    if (box.backgroundColor) style.backgroundColor = box.backgroundColor;
    if (box.background && box.background.type === "linearGradient") {
      const b = box.background;
      const stops = [b.startColor, b.centerColor && `${b.centerColor} ${b.centerPosition || "50%"}`,
        b.endColor].filter(Boolean).join(", ");
      style.backgroundImage = `linear-gradient(${b.angle || "0deg"}, ${stops})`;
    }
    if (box.borderColor) style.borderColor = box.borderColor;
    const border = { none: 0, light: "0.5px", normal: "1px", medium: "2px", semi_bold: "3px",
      bold: "4px" }[box.borderWidth] ?? length(box.borderWidth);
    if (border !== null && border !== undefined) { style.borderStyle = "solid"; style.borderWidth = border; }
    const radius = length(box.cornerRadius, SPACING);
    if (radius) style.borderRadius = radius;
    for (const [key, css] of [["width", "width"], ["maxWidth", "maxWidth"], ["height", "height"],
      ["maxHeight", "maxHeight"]]) {
      const v = length(box[key]);
      if (v) style[css] = v;
    }
    const pad = (v) => length(v, SPACING);
    if (pad(box.paddingAll)) style.padding = pad(box.paddingAll);
    for (const side of ["Top", "Bottom", "Start", "End"]) {
      const css = { Top: "paddingTop", Bottom: "paddingBottom", Start: "paddingLeft",
        End: "paddingRight" }[side];
      if (pad(box["padding" + side])) style[css] = pad(box["padding" + side]);
    }
    if (box.justifyContent) style.justifyContent = box.justifyContent;
    if (box.alignItems) style.alignItems = box.alignItems;
    const spacing = length(box.spacing, SPACING);
    (box.contents || []).forEach((child, i) => {
      const part = component(child, layout, act);
      if (!part) return;
      place(part, child, layout, i === 0);
      // `spacing` is the gap before each child but the first, unless its own margin says.
      if (spacing && i > 0 && child.margin === undefined && child.type !== "filler") {
        part.style[layout === "vertical" ? "marginTop" : "marginLeft"] = spacing;
      }
      node.append(part);
    });
    return tappable(node, box.action, act);
  }

  function textStyle(node, c) {
    const size = length(c.size, TEXT_SIZE);
    if (size) node.style.fontSize = size;
    if (c.weight === "bold") node.style.fontWeight = "bold";
    if (c.color) node.style.color = c.color;
    if (c.style === "italic") node.style.fontStyle = "italic";
    if (c.decoration && c.decoration !== "none") node.style.textDecoration = c.decoration;
  }

  function flexText(c, act) {
    const node = el("div", "flex-text");
    textStyle(node, c);
    if (c.wrap) node.classList.add("wrap");
    if (c.maxLines) { node.style.webkitLineClamp = c.maxLines; node.classList.add("clamped"); }
    if (c.lineSpacing) node.style.lineHeight = `calc(1.4em + ${c.lineSpacing})`;
    if (c.contents && c.contents.length) {
      for (const span of c.contents) {
        const s = el("span", "flex-span", span.text);
        textStyle(s, span);
        node.append(s);
      }
    } else {
      node.textContent = c.text ?? "";
    }
    return tappable(node, c.action, act);
  }

  function flexImage(c, act) {
    const node = placeholder("image", c.url, c.aspectRatio || "1:1");
    node.classList.add("flex-image");
    const size = c.size === "full" ? "100%" : length(c.size || "md", IMAGE_SIZE);
    if (size) node.style.width = size;
    if (c.backgroundColor) node.style.backgroundColor = c.backgroundColor;
    return tappable(node, c.action, act);
  }

  function flexButton(c, act) {
    const action = c.action || {};
    const style = c.style || "link";
    const node = el("button", `flex-button ${style} ${c.height === "sm" ? "sm" : "md"}`,
      action.label || "");
    node.type = "button";
    if (c.color) node.style[style === "link" ? "color" : "backgroundColor"] = c.color;
    return tappable(node, action, act);
  }

  function component(c, parent, act) {
    switch (c.type) {
      case "box": return flexBox(c, act);
      case "text": return flexText(c, act);
      case "image": return flexImage(c, act);
      case "button": return flexButton(c, act);
      case "icon": {
        const node = el("span", "flex-icon", "★");
        node.title = c.url || "";
        const size = length(c.size || "md", TEXT_SIZE);
        if (size) node.style.fontSize = size;
        return node;
      }
      case "separator": {
        const node = el("div", `flex-separator ${parent === "vertical" ? "across" : "down"}`);
        if (c.color) node.style.backgroundColor = c.color;
        return node;
      }
      case "filler": return el("div", "flex-filler");
      case "spacer": {
        const node = el("div", "flex-spacer");
        node.style.flex = `0 0 ${length(c.size || "md", SPACING)}`;
        return node;
      }
      case "video": return placeholder("video", c.url, c.aspectRatio);
      default: return el("div", "unknown", `[${c.type}]`);
    }
  }

  function bubble(b, act) {
    const node = el("div", "flex-bubble");
    node.style.width = (BUBBLE_WIDTH[b.size || "mega"] || 300) + "px";
    if (b.direction === "rtl") node.dir = "rtl";
    const styles = b.styles || {};
    for (const block of ["header", "hero", "body", "footer"]) {
      const content = b[block];
      if (!content) continue;
      const part = el("div", `flex-block ${block}`);
      const blockStyle = styles[block] || {};
      if (blockStyle.backgroundColor) part.style.backgroundColor = blockStyle.backgroundColor;
      if (blockStyle.separator) {
        part.style.borderTop = `1px solid ${blockStyle.separatorColor || "#e0e0e0"}`;
      }
      const inner = component(content, "vertical", act);
      inner.style.flex = "1 0 auto";
      part.append(inner);
      node.append(part);
    }
    return tappable(node, b.action, act);
  }

  function flex(contents, act) {
    if (contents.type === "carousel") {
      const node = el("div", "flex-carousel");
      for (const b of contents.contents || []) node.append(bubble(b, act));
      return node;
    }
    return bubble(contents, act);
  }

  // ---- templates, imagemaps, the rest ---------------------------------------------------

  function actionButton(action, act, className) {
    const node = el("button", className || "template-action", action.label || action.text || "");
    node.type = "button";
    return tappable(node, action, act);
  }

  function column(col, t, act) {
    const node = el("div", "template-column");
    if (col.thumbnailImageUrl) {
      const ratio = t.imageAspectRatio === "square" ? "1:1" : "1.51:1";
      const image = placeholder("image", col.thumbnailImageUrl, ratio);
      if (col.imageBackgroundColor) image.style.backgroundColor = col.imageBackgroundColor;
      node.append(image);
    }
    if (col.title) node.append(el("div", "template-title", col.title));
    node.append(el("div", "template-text", col.text));
    const actions = el("div", "template-actions");
    for (const a of col.actions || []) actions.append(actionButton(a, act));
    node.append(actions);
    return tappable(node, col.defaultAction, act);
  }

  function template(t, act) {
    switch (t.type) {
      case "buttons": {
        const node = column(t, t, act);
        node.classList.add("template", "buttons");
        return node;
      }
      case "confirm": {
        const node = el("div", "template confirm");
        node.append(el("div", "template-text", t.text));
        const actions = el("div", "template-actions side-by-side");
        for (const a of t.actions || []) actions.append(actionButton(a, act));
        node.append(actions);
        return node;
      }
      case "carousel": {
        const node = el("div", "template carousel");
        for (const col of t.columns || []) node.append(column(col, t, act));
        return node;
      }
      case "image_carousel": {
        const node = el("div", "template image-carousel");
        for (const col of t.columns || []) {
          const cell = el("div", "template-column");
          cell.append(placeholder("image", col.imageUrl, "1:1"));
          if (col.action) cell.append(actionButton(col.action, act));
          node.append(cell);
        }
        return node;
      }
      default: return el("div", "unknown", `[template ${t.type}]`);
    }
  }

  function imagemap(m, act) {
    const size = m.baseSize || { width: 1040, height: 1040 };
    const node = placeholder("imagemap", m.baseUrl, `${size.width}:${size.height}`);
    node.classList.add("imagemap");
    for (const a of m.actions || []) {
      const area = actionButton(a, act, "imagemap-area");
      const r = a.area || {};
      Object.assign(area.style, {
        left: `${(100 * r.x) / size.width}%`, top: `${(100 * r.y) / size.height}%`,
        width: `${(100 * r.width) / size.width}%`, height: `${(100 * r.height) / size.height}%`,
      });
      node.append(area);
    }
    return node;
  }

  // A text's `$` placeholders (emojis) or `{name}` substitutions (textV2) as LINE shows them.
  function text(m) {
    const node = el("div", "text");
    if (m.type === "textV2") {
      const subs = m.substitution || {};
      for (const part of (m.text || "").split(/(\{[A-Za-z0-9_]+\})/)) {
        const key = part.startsWith("{") && part.slice(1, -1);
        const sub = key && subs[key];
        if (!sub) { node.append(part); continue; }
        if (sub.type === "emoji") {
          node.append(el("span", "emoji", `(${sub.productId}/${sub.emojiId})`));
        } else {
          const who = sub.mentionee || {};
          node.append(el("span", "mention", who.type === "all" ? "@All" : `@${who.userId}`));
        }
      }
      return node;
    }
    const emojis = [...(m.emojis || [])].sort((a, b) => a.index - b.index);
    let at = 0;
    const s = m.text || "";
    for (const e of emojis) {
      node.append(s.slice(at, e.index));
      node.append(el("span", "emoji", `(${e.productId}/${e.emojiId})`));
      at = e.index + 1;
    }
    node.append(s.slice(at));
    return node;
  }

  // One message the bot sent.
  function message(m, act) {
    switch (m.type) {
      case "text": case "textV2": return text(m);
      case "sticker": return placeholder("sticker", `package ${m.packageId}, sticker ${m.stickerId}`);
      case "image": return placeholder("image", m.originalContentUrl, null);
      case "video": return placeholder("video", m.originalContentUrl, null);
      case "audio": return placeholder("audio", `${m.originalContentUrl} (${m.duration} ms)`);
      case "location": return placeholder("location",
        `${m.title}, ${m.address} (${m.latitude}, ${m.longitude})`);
      case "flex": {
        const node = flex(m.contents || {}, act);
        node.setAttribute("aria-label", m.altText || "flex message");
        return node;
      }
      case "template": return template(m.template || {}, act);
      case "imagemap": return imagemap(m, act);
      default: return el("div", "unknown", `[${m.type}]`);
    }
  }

  return { message, actionButton, describe, el, placeholder };
})();
