// The recording page's transcript: partials in grey replaced in place, finals with their times,
// in order across the sessions of one recording (a fallback session after a failed resume starts
// its segment numbers anew), and the model and language the server reports.

import { formatTime, languageName } from "./messages.js";

const $ = (selector, root = document) => root.querySelector(selector);

export class TranscriptView {
  constructor(root) {
    this.root = root;
    this.ui = {
      language: $("#language", root),
      sessionInfo: $("#session-info", root),
      sessionModel: $("#session-model", root),
      detectedWrap: $("#detected-wrap", root),
      detectedLanguage: $("#detected-language", root),
      transcript: $("#transcript", root),
      empty: $("#transcript-empty", root),
    };
    this.reset();
  }

  reset() {
    this.partials = 0;
    this.segments = new Map(); // "session:segment" → <li>
    this.sessionOrder = new Map(); // session id → 0, 1, … (a fallback session starts anew)
  }

  addSession(sessionId) {
    if (!this.sessionOrder.has(sessionId)) this.sessionOrder.set(sessionId, this.sessionOrder.size);
  }

  clear() {
    this.ui.transcript.querySelectorAll("li.seg").forEach((li) => li.remove());
    this.ui.empty.hidden = false;
  }

  // The model the server chose (ready) and, once a final says it, the language it heard.
  showSessionInfo(config) {
    const { sessionInfo, sessionModel, detectedWrap } = this.ui;
    if (!config) {
      sessionInfo.hidden = true;
      detectedWrap.hidden = true;
      delete this.root.dataset.model;
      delete this.root.dataset.detectedLanguage;
      return;
    }
    sessionModel.textContent = config.model || "default";
    this.root.dataset.model = config.model || "";
    sessionInfo.hidden = false;
  }

  showDetectedLanguage(code) {
    if (!code || this.root.dataset.detectedLanguage === code) return;
    this.root.dataset.detectedLanguage = code;
    this.ui.detectedLanguage.textContent = languageName(code, this.ui.language);
    this.ui.detectedWrap.hidden = false;
  }

  // A partial or final of `session`; a final already shown (re-sent after resuming) stays as it is.
  showSegment(message, session) {
    if (message.type === "final" && message.text && message.text.trim()) this.showDetectedLanguage(message.language);
    const key = `${session}:${message.segment}`;
    let item = this.segments.get(key);
    if (item && item.classList.contains("final")) return;
    if (message.type !== "final") {
      this.partials += 1;
      this.root.dataset.partials = String(this.partials);
    }
    if (!item) {
      item = document.createElement("li");
      item.className = "seg";
      item.dataset.order = String(this.sessionOrder.get(session) * 1e6 + message.segment);
      item.dataset.segment = String(message.segment);
      item.innerHTML = '<span class="seg-time"></span><span class="seg-text"></span>';
      this.insertInOrder(item);
      this.segments.set(key, item);
    }
    this.ui.empty.hidden = true;
    const isFinal = message.type === "final";
    item.classList.toggle("final", isFinal);
    item.classList.toggle("partial", !isFinal);
    $(".seg-time", item).textContent = isFinal ? `${formatTime(message.start)} – ${formatTime(message.end)}` : formatTime(message.start);
    $(".seg-text", item).textContent = message.text || (isFinal ? "" : "…");
    if (isFinal && !message.text.trim()) item.classList.add("blank");
    item.scrollIntoView({ block: "nearest" });
  }

  insertInOrder(item) {
    const order = Number(item.dataset.order);
    for (const other of this.ui.transcript.querySelectorAll("li.seg")) {
      if (Number(other.dataset.order) > order) {
        other.before(item);
        return;
      }
    }
    this.ui.transcript.append(item);
  }
}
