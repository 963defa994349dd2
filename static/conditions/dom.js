// Tiny DOM helpers shared by the builder pages: element creation, CSRF-aware JSON fetch.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "value") element.value = value;
    else if (key === "checked" || key === "selected" || key === "disabled") element[key] = Boolean(value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function option(value, label, selected) {
  return h("option", { value, selected: selected ? true : undefined }, label);
}

function cookie(name) {
  const match = document.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`));
  return match ? decodeURIComponent(match[1]) : "";
}

export function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : cookie("csrftoken");
}

// fetch() that sends/receives JSON and resolves to {ok, status, body} instead of throwing on 4xx.
export async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: {
      Accept: "application/json",
      "Content-Type": "application/json",
      "X-CSRFToken": csrfToken(),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let payload = null;
  const text = await response.text();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = { message: text.slice(0, 300) };
    }
  }
  return { ok: response.ok, status: response.status, body: payload };
}

export function readJsonScript(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : null;
}

// API errors -> [{path, message}]; accepts the project's {"errors": [...]} and DRF's {"field": ["msg"]}.
export function errorList(body) {
  if (!body) return [{ path: "", message: "The server did not answer." }];
  if (Array.isArray(body.errors) && body.errors.length) {
    return body.errors.map((error) => ({ path: error.path || "", message: error.message || String(error) }));
  }
  const list = [];
  const walk = (value, prefix) => {
    if (Array.isArray(value) && value.every((item) => typeof item === "string")) {
      value.forEach((message) => list.push({ path: prefix, message }));
    } else if (value && typeof value === "object") {
      for (const [key, inner] of Object.entries(value)) {
        if (["error", "code"].includes(key)) continue;
        if (key === "message" && typeof inner === "string") {
          if (!list.length) list.push({ path: prefix, message: inner });
          continue;
        }
        walk(inner, prefix ? `${prefix}.${key}` : key);
      }
    } else if (typeof value === "string") {
      list.push({ path: prefix, message: value });
    }
  };
  walk(body, "");
  return list.length ? list : [{ path: "", message: body.message || "Something went wrong." }];
}
