// What the recording page tells its user: states, the server's refusals and failures in plain
// words, and times as a clock shows them.

// The server could not be reached at all (no token, no socket): worth trying again.
export class ServerUnreachable extends Error {}

export const ERROR_TEXT = {
  unauthenticated: "Your login has expired. Reload the page, log in again and press Start.",
  quota_exceeded:
    "This workspace has used its audio quota for the month, so recording stopped. What was said so far is saved.",
  concurrency_limit:
    "Your workspace already has the maximum number of recordings running. Stop one of them and try again.",
  no_capacity: "The recognizer is busy right now. Please try again in a minute.",
  overloaded: "The recognizer is busy right now. Please try again in a minute.",
  idle_timeout: "Recording stopped because no audio reached the server for a while.",
  session_limit: "This recording reached the maximum length and was stopped. It is saved.",
  internal_error: "Something went wrong on the server. What was said so far is saved.",
  rate_limited: "Too many failed sign-in attempts came from this network. Wait a few minutes, then press Start.",
  forbidden: "This account or key has been disabled. What was said so far is saved.",
};
// Refusals that a later reconnect attempt cannot fix.
export const FATAL_CODES = new Set([
  "quota_exceeded",
  "concurrency_limit",
  "session_limit",
  "idle_timeout",
  "rate_limited",
  "forbidden",
]);

export const STATE_BADGE = {
  idle: "Ready",
  starting: "Starting",
  recording: "Live",
  reconnecting: "Reconnecting",
  stopping: "Finishing",
  done: "Saved",
};

export function formatTime(seconds) {
  const whole = Math.max(0, seconds);
  const minutes = Math.floor(whole / 60);
  const rest = whole - minutes * 60;
  return `${minutes}:${rest.toFixed(1).padStart(4, "0")}`;
}

export function formatClock(seconds) {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// "zh" → the menu's own name for it, else the browser's name for the language, else the code.
export function languageName(code, select) {
  const option = Array.from(select.options).find((o) => o.value === code);
  if (option && code !== "auto") return option.textContent.trim();
  try {
    return new Intl.DisplayNames(["en"], { type: "language" }).of(code) || code;
  } catch {
    return code;
  }
}

export function microphoneErrorText(error) {
  if (!window.isSecureContext || !navigator.mediaDevices) {
    return "The microphone needs a secure connection: open this page over https (or on localhost).";
  }
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied. Allow the microphone for this site (the icon in the address bar) and press Start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one and press Start again.";
    case "NotReadableError":
      return "The microphone could not be opened; another application may be using it.";
    default:
      return `The microphone could not be started (${(error && error.message) || error}).`;
  }
}

export function connectErrorText(error) {
  if (error instanceof ServerUnreachable) {
    return "The server can't be reached. Check your connection and press Start to try again.";
  }
  if (error && error.code) return ERROR_TEXT[error.code] || error.message;
  return `Could not start: ${(error && error.message) || error}`;
}

