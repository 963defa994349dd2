// Value inputs of the builder: typed inputs, list/tag editors, and the {X} dynamic-parameter picker.
import { h, option } from "./dom.js";

// Insert `text` at the caret of an <input>/<textarea> and tell listeners it changed.
export function insertAtCaret(input, text) {
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? input.value.length;
  input.value = input.value.slice(0, start) + text + input.value.slice(end);
  input.focus();
  input.setSelectionRange(start + text.length, start + text.length);
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

let openPicker = null;
function closePicker() {
  if (openPicker) {
    const { panel, button } = openPicker;
    panel.remove();
    button.setAttribute("aria-expanded", "false");
    openPicker = null;
  }
}
document.addEventListener("click", (event) => {
  if (openPicker && !openPicker.panel.contains(event.target) && event.target !== openPicker.button) closePicker();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && openPicker) {
    const { button } = openPicker;
    closePicker();
    button.focus();
  }
});

// The {X} button: a list of the catalog's dynamic parameters for this trigger; picking one inserts
// "{{ field }}" where the caret is.
export function dynamicButton(input, ctx) {
  const button = h("button", {
    type: "button", class: "wf-x", title: "Insert a dynamic parameter",
    "aria-label": "Insert dynamic parameter", "aria-haspopup": "true", "aria-expanded": "false",
  }, "{X}");
  button.addEventListener("click", (event) => {
    event.preventDefault();
    if (openPicker?.button === button) return closePicker();
    closePicker();
    const params = ctx.dynamicParams();
    const filter = h("input", { type: "search", class: "wf-x-filter", placeholder: "Search parameters", "aria-label": "Search parameters" });
    const list = h("ul", { class: "wf-x-list", role: "listbox" });
    const fill = () => {
      const needle = filter.value.trim().toLowerCase();
      list.replaceChildren(...params
        .filter((p) => !needle || `${p.label} ${p.name}`.toLowerCase().includes(needle))
        .map((p) => h("li", {}, h("button", {
          type: "button", class: "wf-x-item", dataset: { param: p.name },
          onclick: () => { closePicker(); insertAtCaret(input, `{{ ${p.name} }}`); },
        }, h("span", {}, p.label), h("code", {}, `{{ ${p.name} }}`)))));
      if (!list.children.length) list.append(h("li", { class: "wf-muted" }, "No parameter matches."));
    };
    filter.addEventListener("input", fill);
    filter.addEventListener("keydown", (keyEvent) => {
      if (keyEvent.key === "Enter") {
        keyEvent.preventDefault();
        list.querySelector("button")?.click();
      }
    });
    fill();
    const panel = h("div", { class: "wf-x-panel" }, filter, list);
    button.after(panel);
    button.setAttribute("aria-expanded", "true");
    openPicker = { panel, button };
    filter.focus();
  });
  return button;
}

// A text input with its {X} button.
export function textWithParams({ id, label, value, onInput, ctx, multiline = false, path, placeholder }) {
  const attrs = { id, "aria-label": label, dataset: { path: path || "" }, placeholder };
  const input = multiline ? h("textarea", { ...attrs, rows: 3 }) : h("input", { ...attrs, type: "text" });
  input.value = value ?? "";
  input.addEventListener("input", () => onInput(input.value));
  return h("span", { class: "wf-with-x" }, input, dynamicButton(input, ctx));
}

// An editable list of strings as chips + an input; Enter or comma adds a chip.
export function listEditor({ id, label, values, onChange, suggestions = [], ctx, allowParams = false, path, placeholder }) {
  const items = Array.isArray(values) ? [...values] : [];
  const listId = `${id}-options`;
  const wrapper = h("div", { class: "wf-chips", role: "group", "aria-label": label });
  const input = h("input", {
    id, type: "text", "aria-label": `${label}: add`, list: suggestions.length ? listId : undefined,
    placeholder: placeholder || "Type and press Enter", dataset: { path: path || "" },
  });
  const commit = (refocus = true) => {
    const text = input.value.replace(/,$/, "").trim();
    if (text && !items.includes(text)) {
      items.push(text);
      onChange([...items]);
    }
    input.value = "";
    draw();
    if (refocus) input.focus();
  };
  const draw = () => {
    wrapper.querySelectorAll(".wf-chip").forEach((chip) => chip.remove());
    items.forEach((item, index) => {
      const chip = h("span", { class: "wf-chip", dataset: { path: `${path}[${index}]` } }, item,
        h("button", {
          type: "button", class: "wf-chip-x", "aria-label": `Remove ${item}`,
          onclick: () => { items.splice(index, 1); onChange([...items]); draw(); input.focus(); },
        }, "×"));
      wrapper.insertBefore(chip, inputWrap);
    });
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === ",") {
      event.preventDefault();
      commit();
    } else if (event.key === "Backspace" && !input.value && items.length) {
      items.pop();
      onChange([...items]);
      draw();
    }
  });
  // Leaving the field keeps what was typed as a chip, unless focus went to its own {X} picker.
  input.addEventListener("blur", (event) => {
    if (event.relatedTarget && inputWrap.contains(event.relatedTarget)) return;
    if (input.value.trim()) commit(false);
  });
  const inputWrap = h("span", { class: "wf-chip-input" }, input,
    allowParams && ctx ? dynamicButton(input, ctx) : null,
    suggestions.length ? h("datalist", { id: listId }, suggestions.map((s) => option(s, s))) : null);
  wrapper.append(inputWrap);
  draw();
  return wrapper;
}

// Dates: relative ({"days_ago": N}) or absolute ("2026-01-31").
export function dateInput({ id, label, value, onChange, path }) {
  const relative = value && typeof value === "object" && "days_ago" in value;
  const mode = h("select", { id: `${id}-mode`, "aria-label": `${label}: relative or absolute`, class: "wf-date-mode" },
    option("relative", "days ago", relative || value === undefined || value === null || value === ""),
    option("absolute", "on date", !relative && typeof value === "string" && value !== ""));
  const days = h("input", {
    id: `${id}-days`, type: "number", min: "0", step: "1", class: "wf-num", "aria-label": `${label}: days ago`,
    value: relative ? String(value.days_ago) : "", dataset: { path: path || "" },
  });
  const date = h("input", {
    id: `${id}-date`, type: "date", "aria-label": `${label}: date`,
    value: !relative && typeof value === "string" ? value.slice(0, 10) : "", dataset: { path: path || "" },
  });
  const sync = () => {
    const isRelative = mode.value === "relative";
    days.hidden = !isRelative;
    date.hidden = isRelative;
  };
  mode.addEventListener("change", () => {
    sync();
    if (mode.value === "relative") onChange(days.value === "" ? undefined : { days_ago: Number(days.value) });
    else onChange(date.value || undefined);
  });
  days.addEventListener("input", () => onChange(days.value === "" ? undefined : { days_ago: Number(days.value) }));
  date.addEventListener("input", () => onChange(date.value || undefined));
  sync();
  return h("span", { class: "wf-date" }, mode, days, date, h("span", { class: "wf-muted", hidden: relative ? undefined : true }));
}

// Numbers stay numbers; money keeps the exact decimal text the marketer typed (as the gallery does).
// `currency` is the symbol shown before a money input (the shop currency's, from the catalog); none for
// amounts in a record's own currency (order.total) or plain decimals.
export function numberInput({ id, label, value, onChange, money = false, path, currency = "" }) {
  const input = h("input", {
    id, type: "number", step: money ? "0.01" : "1", class: "wf-num", "aria-label": label,
    value: value === undefined || value === null ? "" : String(value), dataset: { path: path || "" },
  });
  input.addEventListener("input", () => {
    if (input.value === "") return onChange(undefined);
    onChange(money && typeof value === "string" ? input.value : Number(input.value));
  });
  return currency ? h("span", { class: "wf-money", dataset: { currency } }, input) : input;
}

export function choiceInput({ id, label, value, choices, onChange, path, multiple = false }) {
  if (multiple) {
    return listEditor({ id, label, values: value, onChange, suggestions: choices.map((c) => c.value), path });
  }
  const select = h("select", { id, "aria-label": label, dataset: { path: path || "" } },
    option("", "— choose —", value === undefined || value === ""),
    choices.map((choice) => option(choice.value, choice.label ?? choice.value, String(choice.value) === String(value))));
  select.addEventListener("change", () => onChange(select.value === "" ? undefined : select.value));
  return select;
}
