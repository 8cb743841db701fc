// The console page: conversations built from the dev daemon's live log (every webhook the bot
// was sent and every LINE call it made, streamed from /api/log), and the user's side of the
// chat, posted to /api/send, /api/tap and /api/image, which send the webhooks LINE would.
"use strict";

const DEV_USER = "Udev0000000000000000000000000000";
const $ = (id) => document.getElementById(id);
const { el } = Render;

const state = {
  users: [],
  user: DEV_USER,
  chats: new Map(), // chat id → { id, kind, name, list, nav, quick }
  current: null,
  friends: new Map(), // user id → "friend" | "blocked"
  fallbacks: new Set(), // chats a reply fell back to a push for, until that push shows
  images: new Map(), // message id → object URL of the photo the user picked
};

// ---- conversations ----------------------------------------------------------------------

function shortName(id) {
  if (id === DEV_USER) return "you (Udev…)";
  if (id.startsWith("Udev-")) return id.slice(5);
  return id.length > 14 ? id.slice(0, 10) + "…" : id;
}

function addUser(id) {
  if (state.users.includes(id)) return;
  state.users.push(id);
  const option = el("option", null, shortName(id));
  option.value = id;
  $("user").append(option);
}

function chat(id, name) {
  let c = state.chats.get(id);
  if (c && name && name !== c.name) rename(c, name);
  if (c) return c;
  const kind = id.startsWith("C") ? "group" : id.startsWith("R") ? "room" : "user";
  if (kind === "user") addUser(id);
  c = { id, kind, name: name || shortName(id), quick: [] };
  c.list = el("ol", "messages");
  c.list.dataset.chat = id;
  c.list.hidden = true;
  $("messages").append(c.list);
  c.link = el("button", "chat-link");
  c.link.type = "button";
  c.link.addEventListener("click", () => show(id));
  c.nav = el("li");
  c.nav.append(c.link);
  $("chat-list").append(c.nav);
  state.chats.set(id, c);
  rename(c, c.name);
  if (!state.current) show(id);
  return c;
}

// A group's name is known only to the console that made it (a webhook carries the id).
function rename(c, name) {
  c.name = name;
  c.link.textContent = `${c.kind === "user" ? "" : c.kind + ": "}${name}`;
  if (c === state.current) show(c.id);
}

function show(id) {
  const c = chat(id);
  for (const other of state.chats.values()) {
    other.list.hidden = other !== c;
    other.nav.classList.toggle("current", other === c);
  }
  c.nav.classList.remove("unread");
  state.current = c;
  $("chat-title").textContent = c.kind === "user" ? `Chat with the bot as ${c.name}`
    : `${c.kind} ${c.name} (${c.id})`;
  $("add-member").disabled = c.kind === "user";
  if (c.kind === "user" && c.id !== state.user) selectUser(c.id);
  showQuickReply();
  showTyping();
  c.list.lastElementChild?.scrollIntoView({ block: "end" });
}

function selectUser(id) {
  addUser(id);
  state.user = id;
  $("user").value = id;
  const friend = state.friends.get(id);
  $("friendship").textContent = friend === "friend" ? "a friend of the bot"
    : friend === "blocked" ? "has blocked the bot" : "";
  $("unfollow").disabled = friend === "blocked";
}

// Appends a line to chat `id`; `who` is "bot", "user" or "system".
function say(id, who, content, sender) {
  const c = chat(id);
  const item = el("li", `msg ${who}`);
  if (sender && c.kind !== "user") item.append(el("div", "sender", shortName(sender)));
  item.append(content);
  c.list.append(item);
  if (c !== state.current) c.nav.classList.add("unread");
  else item.scrollIntoView({ block: "end" });
  return item;
}

function system(id, text) {
  return say(id, "system", el("span", null, text));
}

// ---- the user's side --------------------------------------------------------------------

async function api(path, body, headers) {
  const init = { method: "POST", body, headers: headers || { "content-type": "application/json" } };
  const failed = (why) => {
    system(state.current.id, `not sent: ${why}`).classList.add("error");
    return null;
  };
  const response = await fetch(path, init).catch(() => null);
  if (!response) return failed("linebotd dev is not running");
  const answer = await response.json().catch(() => ({}));
  return response.ok ? answer : failed(answer.error || response.status);
}

// Where the user speaks now: a group or room id, or null for the one-to-one chat.
function where() {
  return state.current && state.current.kind !== "user" ? state.current.id : null;
}

function send(fields) {
  clearQuickReply();
  return api("/api/send", JSON.stringify({ user: state.user, chat: where(), ...fields }));
}

function ask(title, fields) {
  const dialog = $("ask");
  $("ask-title").textContent = title;
  const box = $("ask-fields");
  box.replaceChildren();
  for (const f of fields) {
    const label = el("label", null, f.label + " ");
    const input = el("input");
    Object.assign(input, { name: f.name, type: f.type || "text", value: f.value ?? "" });
    for (const k of ["min", "max", "step"]) if (f[k] !== undefined) input[k] = f[k];
    label.append(input);
    box.append(label);
  }
  dialog.showModal();
  box.querySelector("input")?.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") return resolve(null);
      const values = {};
      for (const input of box.querySelectorAll("input")) values[input.name] = input.value;
      resolve(values);
    }, { once: true });
  });
}

async function sendLocation() {
  const v = await ask("Send a location", [
    { name: "text", label: "Title", value: "Tokyo Station" },
    { name: "latitude", label: "Latitude", value: "35.681236", type: "number", step: "any" },
    { name: "longitude", label: "Longitude", value: "139.767125", type: "number", step: "any" }]);
  if (v) send({ type: "location", text: v.text, latitude: +v.latitude, longitude: +v.longitude });
}

async function sendImage(file) {
  clearQuickReply();
  const query = new URLSearchParams({ user: state.user, chat: where() || "" });
  const answer = await api(`/api/image?${query}`, file,
    { "content-type": file.type || "application/octet-stream" });
  const id = answer?.event?.message?.id;
  if (!id) return;
  state.images.set(id, URL.createObjectURL(file));
  document.querySelectorAll(`[data-message-id="${id}"]`).forEach(showPicked);
}

function showPicked(node) {
  const url = state.images.get(node.dataset.messageId);
  if (!url) return;
  const img = el("img", "picked");
  img.src = url;
  img.alt = "the photo you sent";
  node.replaceChildren(img);
}

// What tapping one of the bot's actions does, as LINE's app does it.
async function act(action) {
  let value;
  switch (action.type) {
    case "uri": {
      // LINE opens only these schemes; a script's `javascript:` URI must not run here.
      const uri = action.altUri?.desktop || action.uri || action.linkUri || "";
      if (/^(https?|tel|mailto|line):/i.test(uri)) window.open(uri, "_blank", "noopener");
      else system(state.current.id, `LINE would not open ${uri}`).classList.add("error");
      return;
    }
    case "camera": case "cameraRoll": $("file").click(); return;
    case "location": sendLocation(); return;
    case "clipboard":
      navigator.clipboard?.writeText(action.clipboardText || "");
      system(state.current.id, `copied “${action.clipboardText}”`);
      return;
    case "datetimepicker": {
      const mode = action.mode || "datetime";
      const type = { date: "date", time: "time", datetime: "datetime-local" }[mode] || "text";
      const v = await ask(action.label || "Pick a date", [{ name: "value", label: mode, type,
        value: action.initial, min: action.min, max: action.max }]);
      if (!v) return;
      value = v.value;
      break;
    }
    case "postback": {
      const shown = action.displayText || action.text;
      if (shown) say(state.current.id, "user", el("div", "text", shown), state.user);
      break;
    }
  }
  clearQuickReply();
  const answer = await api("/api/tap",
    JSON.stringify({ user: state.user, chat: where(), action, value }));
  if (answer?.note) system(state.current.id, answer.note);
}

function clearQuickReply() {
  if (state.current) state.current.quick = [];
  showQuickReply();
}

function showQuickReply() {
  const bar = $("quick-reply");
  bar.replaceChildren();
  for (const item of state.current?.quick || []) {
    if (item.action) bar.append(Render.actionButton(item.action, act, "chip"));
  }
}

// ---- the log: what the bot was sent and what it did ------------------------------------

function userMessage(m) {
  switch (m.type) {
    case "text": return el("div", "text", m.text);
    case "sticker": return Render.placeholder("sticker", `package ${m.packageId}, sticker ${m.stickerId}`);
    case "location": return Render.placeholder("location", `${m.title} (${m.latitude}, ${m.longitude})`);
    case "image": {
      const node = Render.placeholder("image", `message ${m.id}`);
      node.dataset.messageId = m.id;
      showPicked(node);
      return node;
    }
    default: return el("div", "text", `[${m.type}]`);
  }
}

const EVENT_LINES = {
  follow: (e) => `${shortName(e.source.userId)} ${e.follow?.isUnblocked ? "unblocked" : "added"} the bot`,
  unfollow: (e) => `${shortName(e.source.userId)} blocked the bot`,
  join: () => "the bot joined",
  leave: () => "the bot left",
  memberJoined: (e) => `${(e.joined?.members || []).map((m) => shortName(m.userId)).join(", ")} joined`,
  memberLeft: (e) => `${(e.left?.members || []).map((m) => shortName(m.userId)).join(", ")} left`,
};

function webhook(body) {
  for (const e of body.events || []) {
    const s = e.source || {};
    const id = s.groupId || s.roomId || s.userId;
    if (!id) continue;
    if (e.type === "follow") state.friends.set(s.userId, "friend");
    if (e.type === "unfollow") state.friends.set(s.userId, "blocked");
    if (s.userId === state.user) selectUser(state.user);
    if (e.type === "message") say(id, "user", userMessage(e.message), s.userId);
    else if (EVENT_LINES[e.type]) system(id, EVENT_LINES[e.type](e));
    else chat(id);
  }
}

// The chats a message call reaches.
function recipients(call) {
  const kind = call.path.split("/").pop();
  if (kind === "reply") return call.to ? [call.to] : [];
  if (kind === "push") return [call.body.to];
  if (kind === "multicast") return call.body.to || [];
  // broadcast and narrowcast: every user who has not blocked the bot.
  return state.users.filter((u) => state.friends.get(u) !== "blocked");
}

function botMessages(call) {
  for (const id of recipients(call)) {
    const c = chat(id);
    typing(id, 0);
    for (const m of call.body.messages || []) {
      const item = say(id, "bot", Render.message(m, act), m.sender?.name);
      item.dataset.type = m.type;
      c.quick = m.quickReply?.items || [];
    }
    if (c === state.current) showQuickReply();
  }
}

// "The bot is typing…" in chat `id` for `seconds` from `since`, or until its next message.
const typingUntil = new Map();
function typing(id, seconds, since) {
  const until = (since || Date.now()) + seconds * 1000;
  typingUntil.set(id, until);
  showTyping();
  if (seconds) setTimeout(showTyping, until - Date.now() + 10);
}

function showTyping() {
  $("typing").hidden = !(state.current && typingUntil.get(state.current.id) > Date.now());
}

function call(entry) {
  const c = entry.call;
  if (c.status >= 200 && c.status < 300) {
    if (/^\/v2\/bot\/message\/(reply|push|multicast|broadcast|narrowcast)$/.test(c.path)) {
      botMessages(c);
    } else if (c.path === "/v2/bot/chat/loading/start") {
      typing(c.body.chatId, c.body.loadingSeconds || 20, entry.at_ms);
    }
  } else if (c.path.startsWith("/v2/bot/message/")) {
    const to = c.to || (typeof c.body?.to === "string" ? c.body.to : null);
    if (to) system(to, `LINE refused the bot's message: ${entry.refusal}`).classList.add("error");
  }
}

function logLine(entry) {
  const item = el("li", `entry ${entry.kind}`);
  const head = el("div", "head");
  const time = new Date(entry.at_ms).toLocaleTimeString();
  head.append(el("time", null, time), " ");
  const details = (label, value) => {
    const d = el("details");
    d.append(el("summary", null, label), el("pre", null, JSON.stringify(value, null, 2)));
    item.append(d);
  };
  switch (entry.kind) {
    case "webhook": {
      const events = entry.body.events || [];
      const said = events.map((e) => e.type + (e.message ? ` ${e.message.type}` : "")
        + (e.message?.text ? ` “${e.message.text}”` : "")
        + (e.postback ? ` ${e.postback.data}` : "")
        + (e.postback?.params ? ` ${JSON.stringify(e.postback.params)}` : "")).join(", ");
      head.append(`⇢ webhook: ${said}`);
      item.append(head);
      details("body", entry.body);
      break;
    }
    case "call": {
      const c = entry.call;
      head.append(`⇠ ${c.method} ${c.path} → ${c.status}`);
      const to = c.body?.to;
      if (entry.billed && typeof to === "string" && state.fallbacks.delete(to)) {
        head.append(" ", el("span", "badge fallback", "fallback push"));
      }
      if (entry.billed) head.append(" ", el("span", "badge billed", "billed"));
      item.append(head);
      if (entry.refusal) item.append(el("div", "refusal", entry.refusal));
      if (c.body !== null) details("body", c.body);
      break;
    }
    case "error": {
      head.append(`✗ ${entry.at}: ${entry.message}`);
      item.append(head);
      if (entry.source !== null) {
        const caret = " ".repeat(Math.max((entry.col || 1) - 1, 0)) + "^";
        item.append(el("pre", "source", `${entry.source}\n${caret}`));
      }
      break;
    }
    case "reload": {
      const parts = [];
      if (entry.loaded.length) parts.push(`loaded ${entry.loaded.join(", ")}`);
      if (entry.removed.length) parts.push(`removed ${entry.removed.join(", ")}`);
      if (entry.failed) parts.push(`${entry.failed} failed (the last good version keeps running)`);
      head.append(`↻ reload: ${parts.join("; ")}`);
      item.append(head);
      break;
    }
    case "fallback":
      state.fallbacks.add(entry.to);
      head.append(`reply to ${shortName(entry.to)} sent as a push (billed): ${entry.why}`);
      item.append(head);
      break;
    default:
      head.append(entry.text || entry.kind);
      item.append(head);
  }
  const log = $("log");
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 20;
  log.append(item);
  if (atEnd) item.scrollIntoView({ block: "end" });
}

function handle(entry) {
  if (entry.kind === "webhook") webhook(entry.body);
  if (entry.kind === "call") call(entry);
  logLine(entry);
}

// ---- wiring -----------------------------------------------------------------------------

function wire() {
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value;
    if (!text) return;
    $("text").value = "";
    send({ type: "text", text });
  });
  $("user").addEventListener("change", () => {
    selectUser($("user").value);
    if (state.current.kind === "user") show(state.user);
  });
  $("new-user").addEventListener("click", async () => {
    const v = await ask("A new user", [{ name: "name", label: "Name", value: "alice" }]);
    if (!v || !v.name) return;
    const id = `Udev-${v.name}`;
    chat(id);
    show(id);
  });
  $("follow").addEventListener("click", () => send({
    type: state.friends.get(state.user) === "blocked" ? "refollow" : "follow", chat: null,
  }));
  $("unfollow").addEventListener("click", () => send({ type: "unfollow", chat: null }));
  for (const [button, room] of [["new-group", false], ["new-room", true]]) {
    $(button).addEventListener("click", async () => {
      const v = await ask(room ? "A new room" : "A new group",
        [{ name: "name", label: "Name", value: room ? "trip" : "team" }]);
      if (!v || !v.name) return;
      const answer = await send({ type: "join", name: v.name, room, chat: null });
      const source = answer?.event?.source;
      if (source) {
        chat(source.groupId || source.roomId, v.name);
        show(source.groupId || source.roomId);
      }
    });
  }
  $("add-member").addEventListener("click", () => send({ type: "memberJoined" }));
  $("sticker").addEventListener("click", async () => {
    const v = await ask("Send a sticker", [
      { name: "packageId", label: "Package", value: "446" },
      { name: "stickerId", label: "Sticker", value: "1988" }]);
    if (v) send({ type: "sticker", ...v });
  });
  $("image").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    if (file) sendImage(file);
    $("file").value = "";
  });
  $("location").addEventListener("click", sendLocation);
  $("clear-log").addEventListener("click", () => $("log").replaceChildren());

  chat(DEV_USER);
  selectUser(DEV_USER);
  const events = new EventSource("/api/log");
  events.onmessage = (e) => handle(JSON.parse(e.data));
  events.onopen = () => document.body.classList.add("live");
  events.onerror = () => document.body.classList.remove("live");
}

wire();
