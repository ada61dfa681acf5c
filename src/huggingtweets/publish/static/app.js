"use strict";
const $ = (id) => document.getElementById(id);
const COLORS = ["#1d9bf0", "#7856ff", "#f91880", "#00ba7c", "#ff7a00", "#8b98a5"];
let info = null;

function colorFor(s) {
  let h = 0;
  for (const c of s) h = (h + c.codePointAt(0)) % 9973;
  return COLORS[h % COLORS.length];
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;  // text only: never parsed as HTML
  return e;
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {  // no clipboard permission (plain http, headless): the old way
    const area = el("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (_) { /* nothing more to try */ }
    area.remove();
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

function tweetCard(sample) {
  const card = el("article", "tweet");
  const avatar = el("div", "avatar", (Array.from(sample.name.trim())[0] || "?").toUpperCase());
  avatar.style.background = colorFor(sample.handle);
  avatar.setAttribute("aria-hidden", "true");
  const who = el("div", "who");
  who.append(el("span", "name", sample.name), el("span", "handle", sample.handle));
  const copy = el("button", "copy", "Copy");
  copy.type = "button";
  copy.addEventListener("click", () => copyText(sample.text, copy));
  card.append(avatar, who, el("p", "text", sample.text), copy);
  return card;
}

async function generate(event) {
  event.preventDefault();
  const button = $("generate");
  button.disabled = true;
  $("status").className = "";
  $("status").textContent = "Writing…";
  const body = {
    prompt: $("prompt").value,
    n: Number($("n").value),
    temperature: Number($("temperature").value),
    user: $("voice").value || null,
  };
  try {
    const res = await fetch("/api/generate", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || res.statusText);
    $("results").replaceChildren(...data.samples.map(tweetCard));
    const short = body.n - data.samples.length;
    $("status").textContent = data.samples.length + " tweets" +
      (short > 0 ? " (" + short + " left out: they copied training tweets)" : "");
  } catch (err) {
    $("status").className = "error";
    $("status").textContent = "Could not generate: " + err.message;
  } finally {
    button.disabled = false;
  }
}

async function init() {
  info = await (await fetch("/api/info")).json();
  $("title").textContent = info.title;
  $("subtitle").textContent = "A language model that writes like " + info.title + ".";
  document.title = info.title + " · huggingtweets";
  $("prompt").placeholder = info.prompts.find((p) => p) || "";
  $("n").value = info.defaults.n;
  $("n").max = info.max_n;
  $("temperature").value = info.defaults.temperature;
  if (info.voices.length) {
    $("voice").append(el("option", "", "any"));
    $("voice").firstChild.value = "";
    for (const v of info.voices) {
      const o = el("option", "", v.name + " (" + v.handle + ")");
      o.value = v.user;
      $("voice").append(o);
    }
    $("voice-label").hidden = false;
  }
  $("form").addEventListener("submit", generate);
  document.body.dataset.ready = "true";
}

init().catch((err) => {
  $("status").className = "error";
  $("status").textContent = "Could not reach the server: " + err.message;
});
