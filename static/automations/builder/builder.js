// The workflow builder page: trigger card, step cards (condition / action / wait), side panel with the
// trigger settings and the test run, save / activate / pause with errors shown on their cards.
import { api, errorList, h, option, readJsonScript } from "../../conditions/dom.js";
import { conditionEditor, describeCondition, windowText } from "../../conditions/editor.js";
import { choiceInput, listEditor, numberInput, textWithParams } from "../../conditions/inputs.js";
import { conditionToNode, newGroup, newRule, nodeToCondition } from "../../conditions/model.js";
import {
  cardLists, cardToStep, definitionToModel, findCard, insertCard, isStateTag, locatePath, modelToDefinition, moveCard,
  newActionCard, newConditionCard, newSplitBranch, newSplitCard, newWaitCard, removeCard, stateTagPrepare,
} from "./model.js";

const boot = readJsonScript("wf-boot");
const root = document.getElementById("wf-builder");

const state = {
  workflow: boot.workflow,
  model: definitionToModel(boot.workflow.definition),
  settings: { ...(boot.workflow.settings || {}) },
  name: boot.workflow.name || "",
  description: boot.workflow.description || "",
  errors: [], // [{path, message, target, conditionUid, rest}]
  trace: null, // {steps: {stepId: {...}}, conditions: {...}, summary}
  dirty: false,
  busy: false,
  notice: null,
  readOnly: !boot.can_change || Boolean(boot.read_only),
};
const FIELDS = new Map(boot.catalog.fields.map((field) => [field.name, field]));
const ACTIONS = new Map(boot.catalog.actions.map((action) => [action.name, action]));
const TRIGGERS = new Map(boot.catalog.triggers.map((trigger) => [trigger.name, trigger]));
const OPERATORS = new Map(boot.catalog.operators.map((operator) => [operator.name, operator]));

function scopeOf(field) {
  return field.scope || field.name.split(".")[0];
}

function triggerInfo() {
  return TRIGGERS.get(state.model.trigger.event) || null;
}

// --- Context handed to the editors ----------------------------------------------------------------
const ctx = {
  operator(name) {
    return OPERATORS.get(name) || null;
  },
  field(name) {
    if (!name) return null;
    if (FIELDS.has(name)) return FIELDS.get(name);
    // Wildcard fields ("event.properties.*"): any key under the prefix.
    const parts = name.split(".");
    for (let cut = parts.length - 1; cut > 0; cut -= 1) {
      const wildcard = FIELDS.get(`${parts.slice(0, cut).join(".")}.*`);
      if (wildcard) return wildcard;
    }
    return null;
  },
  fieldsInScope(scope) {
    if (scope) return boot.catalog.fields.filter((field) => scopeOf(field) === scope);
    const objects = new Set(triggerInfo()?.objects || ["customer"]);
    return boot.catalog.fields.filter((field) => objects.has(scopeOf(field)));
  },
  choicesFor(field) {
    if (!field) return [];
    if (field.choices?.length) return field.choices;
    const picked = boot.suggestions[field.picker] || [];
    return picked.map((value) => (typeof value === "object" ? value : { value, label: value }));
  },
  dynamicParams() {
    const objects = new Set(triggerInfo()?.objects || ["customer"]);
    return boot.catalog.fields.filter((field) => field.dynamic !== false && objects.has(scopeOf(field)) && field.type !== "list");
  },
  changed(structural = false, focusId = null) {
    markDirty();
    if (structural) render(focusId);
    else refreshSummaries();
  },
  errorsFor(uid) {
    const mine = state.errors.filter((error) => error.conditionUid === uid);
    return mine.length ? h("ul", { class: "wf-errors", role: "alert" }, mine.map((error) => h("li", {}, error.message))) : null;
  },
  traceFor(uid) {
    const entry = state.trace?.conditions?.[uid];
    if (!entry) return null;
    if (entry.result === undefined) {
      return h("div", { class: "wf-trace-inline is-value" }, `this customer: ${formatValue(entry.actual)}`);
    }
    return h("div", { class: `wf-trace-inline ${entry.result ? "is-true" : "is-false"}` },
      entry.result ? "✓ true for this customer" : "✗ false for this customer", entry.actual !== undefined ? ` — value: ${formatValue(entry.actual)}` : "");
  },
};

function formatValue(value) {
  if (value === null || value === undefined) return "(empty)";
  if (Array.isArray(value) && value.every((item) => typeof item !== "object")) return value.join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function markDirty() {
  state.dirty = true;
  const status = root.querySelector(".wf-save-state");
  if (status) status.textContent = "Unsaved changes";
}

window.addEventListener("beforeunload", (event) => {
  if (state.dirty) {
    event.preventDefault();
    event.returnValue = "";
  }
});

// --- Cards --------------------------------------------------------------------------------------

function cardErrors(target) {
  const mine = state.errors.filter((error) => error.target === target && !error.conditionUid);
  if (!mine.length) return null;
  return h("ul", { class: "wf-errors", role: "alert" }, mine.map((error) => h("li", { dataset: { path: error.rest } },
    error.rest ? h("code", {}, error.rest) : null, error.rest ? " " : null, error.message)));
}

function cardTools(card, list, index) {
  if (state.readOnly) return null;
  const label = cardTitle(card);
  return h("span", { class: "wf-card-tools" },
    h("button", { type: "button", class: "wf-icon", "aria-label": `Move ${label} up`, title: "Move up", disabled: index === 0 || undefined,
      onclick: () => { moveCard(state.model, card.uid, -1); markDirty(); render(`${card.uid}-up`); } }, "↑"),
    h("button", { type: "button", class: "wf-icon", "aria-label": `Move ${label} down`, title: "Move down", disabled: index === list.length - 1 || undefined,
      onclick: () => { moveCard(state.model, card.uid, 1); markDirty(); render(`${card.uid}-down`); } }, "↓"),
    h("button", { type: "button", class: "wf-icon wf-remove", "aria-label": `Delete ${label}`, title: "Delete step",
      onclick: () => { if (confirmDelete(card)) { removeCard(state.model, card.uid); markDirty(); render(); } } }, "✕"));
}

function confirmDelete(card) {
  const nested = card.kind === "condition" ? card.then.length + card.else.length
    : card.kind === "split" ? card.branches.reduce((sum, branch) => sum + (branch.steps?.length || 0), 0) : 0;
  return nested === 0 || window.confirm(`Delete this ${card.kind === "split" ? "split" : "condition"} and the ${nested} step(s) in its branches?`);
}

function cardTitle(card) {
  if (card.kind === "action") return ACTIONS.get(card.action)?.label || card.action;
  if (card.kind === "condition") return "Condition";
  if (card.kind === "wait") return "Wait";
  if (card.kind === "split") return "A/B split";
  return "Step";
}

function traceBadge(card) {
  const entry = state.trace?.steps?.[card.id];
  if (!state.trace) return null;
  if (!entry) return h("span", { class: "wf-trace-badge is-grey" }, "not reached");
  const cls = { then: "is-green", else: "is-amber", would_run: "is-green", succeeded: "is-green", ran: "is-green", skipped: "is-grey", failed: "is-red", waiting: "is-blue" }[entry.badge] || "is-grey";
  return h("span", { class: `wf-trace-badge ${cls}` }, entry.label);
}

function traceDetails(card) {
  const entry = state.trace?.steps?.[card.id];
  if (!entry?.details?.length) return null;
  return h("dl", { class: "wf-trace-details" }, entry.details.map(([key, value]) => [h("dt", {}, key), h("dd", {}, formatValue(value))]));
}

let dragging = null;

// A condition cannot be dropped into its own branches.
function containsList(card, list) {
  const branches = card.kind === "condition" ? [card.then, card.else]
    : card.kind === "split" ? card.branches.map((branch) => branch.steps).filter(Boolean) : [];
  return branches.some((branch) => branch === list || branch.some((child) => containsList(child, list)));
}

function insertMenu(list, index, where) {
  if (state.readOnly) return h("div", { class: "wf-connector", "aria-hidden": "true" });
  const id = `add-${where}-${index}`;
  const menu = h("div", { class: "wf-add-menu", hidden: true, role: "menu" },
    h("button", { type: "button", role: "menuitem", onclick: () => add(newConditionCard()) }, h("strong", {}, "Condition"), h("span", {}, "If / then / else")),
    h("button", { type: "button", role: "menuitem", onclick: () => add(newActionCard("")) }, h("strong", {}, "Action"), h("span", {}, "Tag, e-mail, points, webhook…")),
    h("button", { type: "button", role: "menuitem", onclick: () => add(newWaitCard({ days: 1 })) }, h("strong", {}, "Wait"), h("span", {}, "Pause the run")),
    h("button", { type: "button", role: "menuitem", onclick: () => add(newSplitCard()) }, h("strong", {}, "A/B split"), h("span", {}, "Named branches by percent, stable per customer")));
  function add(card) {
    insertCard(state.model, list, index, card);
    markDirty();
    render(card.kind === "condition" ? `${card.condition.children[0].uid}-field` : card.kind === "action" ? `${card.uid}-action`
      : card.kind === "split" ? `${card.branches[0].uid}-name` : `${card.uid}-amount`);
  }
  const toggle = h("button", {
    type: "button", class: "wf-add", id, "aria-haspopup": "true", "aria-expanded": "false",
    "aria-label": `Add a step ${where === "root" ? "" : `in ${where} `}at position ${index + 1}`, title: "Add a step here",
  }, "+");
  toggle.addEventListener("click", () => {
    const open = menu.hidden;
    root.querySelectorAll(".wf-add-menu").forEach((other) => { other.hidden = true; });
    menu.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) menu.querySelector("button").focus();
  });
  menu.addEventListener("keydown", (event) => {
    const items = [...menu.querySelectorAll("button")];
    const at = items.indexOf(document.activeElement);
    if (event.key === "Escape") { menu.hidden = true; toggle.focus(); }
    if (event.key === "ArrowDown") { event.preventDefault(); items[(at + 1) % items.length].focus(); }
    if (event.key === "ArrowUp") { event.preventDefault(); items[(at - 1 + items.length) % items.length].focus(); }
  });
  const zone = h("div", { class: "wf-insert" }, toggle, menu);
  // Drag and drop: a card dropped on a "+" lands at that position (the buttons stay the keyboard way).
  zone.addEventListener("dragover", (event) => {
    if (!dragging) return;
    event.preventDefault();
    zone.classList.add("is-drop");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("is-drop"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("is-drop");
    const found = dragging && findCard(state.model, dragging);
    if (!found || containsList(found.card, list)) return;
    let target = index;
    if (found.list === list && found.index < index) target -= 1;
    found.list.splice(found.index, 1);
    list.splice(target, 0, found.card);
    dragging = null;
    markDirty();
    render();
  });
  return zone;
}

function stepList(list, where) {
  const children = [insertMenu(list, 0, where)];
  list.forEach((card, index) => {
    children.push(stepCard(card, list, index));
    children.push(insertMenu(list, index + 1, where));
  });
  if (!list.length && where !== "root") children.push(h("p", { class: "wf-muted wf-empty-branch" }, "Nothing happens."));
  return h("div", { class: "wf-steps" }, children);
}

function stepCard(card, list, index) {
  const errors = state.errors.some((error) => error.target === card.uid);
  const body = card.kind === "condition" ? conditionBody(card)
    : card.kind === "action" ? actionBody(card)
      : card.kind === "wait" ? waitBody(card)
        : card.kind === "split" ? splitBody(card)
          : h("pre", {}, JSON.stringify(cardToStep(card), null, 2));
  const icon = { condition: "◆", action: "▶", wait: "◔", split: "⇆" }[card.kind] || "•";
  return h("section", {
    class: `wf-card wf-card-${card.kind}${errors ? " has-errors" : ""}${state.trace?.steps?.[card.id] ? " is-traced" : ""}`,
    dataset: { uid: card.uid, step: card.id || "" }, "aria-label": `${cardTitle(card)} step ${card.id || ""}`,
  },
  h("header", {
    class: "wf-card-head", draggable: state.readOnly ? undefined : "true", title: state.readOnly ? undefined : "Drag to move",
    ondragstart: (event) => { dragging = card.uid; event.dataTransfer.effectAllowed = "move"; event.dataTransfer.setData("text/plain", card.uid); },
    ondragend: () => { dragging = null; },
  },
    h("span", { class: "wf-card-icon", "aria-hidden": "true" }, icon),
    h("span", { class: "wf-card-kind" }, card.kind === "action" ? "Action" : cardTitle(card)),
    h("span", { class: "wf-card-summary" }, summaryText(card)),
    traceBadge(card),
    h("code", { class: "wf-card-id", title: "Step id" }, card.id || ""),
    cardTools(card, list, index)),
  cardErrors(card.uid),
  h("div", { class: "wf-card-body" }, body),
  traceDetails(card),
  card.kind === "condition" ? h("div", { class: "wf-branches" },
    branch(card, "then", "Then", "wf-then"), branch(card, "else", "Else", "wf-else")) : null,
  card.kind === "split" ? h("div", { class: "wf-branches wf-split-branches" }, card.branches.map((item, index) => splitBranch(card, item, index))) : null);
}

// --- A/B split --------------------------------------------------------------------------------------

function splitBranch(card, item, index) {
  if (!item.steps) return h("pre", { class: "wf-raw" }, JSON.stringify(item.raw));
  const key = `split[${index}].steps`;
  const taken = state.trace?.steps?.[card.id]?.branch;
  return h("div", { class: `wf-branch wf-split-branch${taken === key ? " is-taken" : taken ? " is-not-taken" : ""}`, dataset: { branch: key } },
    h("div", { class: "wf-branch-label" }, `${item.name ?? "?"} · ${item.percent ?? "?"} %`, taken === key ? h("span", { class: "wf-taken" }, " ← taken") : null),
    stepList(item.steps, `${card.id || "split"} branch ${item.name ?? index + 1}`));
}

function splitBody(card) {
  const total = card.branches.reduce((sum, item) => sum + (Number(item.percent) || 0), 0);
  const note = h("span", { class: `wf-muted${total === 100 ? "" : " wf-split-total-bad"}`, dataset: { testid: "split-total" } }, `Total ${total} % (must be 100 %)`);
  const disabled = state.readOnly || undefined;
  const rows = card.branches.map((item, index) => {
    if (!item.steps) return null;
    const name = h("input", { id: `${item.uid}-name`, type: "text", value: item.name ?? "", maxlength: "40", class: "wf-split-name", "aria-label": `Branch ${index + 1} name`, dataset: { path: `split[${index}].name` }, disabled });
    const percent = h("input", { id: `${item.uid}-percent`, type: "number", min: "1", max: "99", step: "1", class: "wf-num", value: String(item.percent ?? ""), "aria-label": `Branch ${index + 1} percent`, dataset: { path: `split[${index}].percent` }, disabled });
    name.addEventListener("input", () => { item.name = name.value; markDirty(); refreshSummaries(); });
    percent.addEventListener("input", () => {
      item.percent = percent.value === "" ? null : Number(percent.value);
      const sum = card.branches.reduce((acc, other) => acc + (Number(other.percent) || 0), 0);
      note.textContent = `Total ${sum} % (must be 100 %)`;
      note.classList.toggle("wf-split-total-bad", sum !== 100);
      markDirty();
      refreshSummaries();
    });
    const remove = state.readOnly || card.branches.length <= 2 ? null : h("button", {
      type: "button", class: "wf-icon wf-remove", "aria-label": `Remove branch ${item.name ?? index + 1}`, title: "Remove branch",
      onclick: () => {
        if (item.steps.length && !window.confirm(`Remove branch ${item.name} and its ${item.steps.length} step(s)?`)) return;
        card.branches.splice(index, 1); markDirty(); render();
      },
    }, "✕");
    return h("div", { class: "wf-row wf-split-row" }, h("label", { for: name.id }, "Branch"), name, percent, h("span", {}, "%"), remove);
  });
  const addBranch = state.readOnly || card.branches.length >= 10 ? null : h("button", {
    type: "button", class: "wf-link", id: `${card.uid}-add-branch`,
    onclick: () => { const item = newSplitBranch(String.fromCharCode(65 + card.branches.length), 0); card.branches.push(item); markDirty(); render(`${item.uid}-name`); },
  }, "+ Add a branch");
  return h("div", { class: "wf-split" }, rows, h("div", { class: "wf-row" }, note, addBranch),
    h("p", { class: "wf-muted" }, "Each customer always goes down the same branch. Compare the branches in Reports → Workflows."));
}

function branch(card, key, label, cls) {
  const taken = state.trace?.steps?.[card.id]?.branch;
  return h("div", { class: `wf-branch ${cls}${taken === key ? " is-taken" : taken ? " is-not-taken" : ""}`, dataset: { branch: key } },
    h("div", { class: "wf-branch-label" }, label, taken === key ? h("span", { class: "wf-taken" }, " ← taken") : null),
    stepList(card[key], `${card.id || "condition"} ${label.toLowerCase()}`));
}

function summaryText(card) {
  if (card.kind === "condition") return `If ${describeCondition(card.condition, ctx)}`;
  if (card.kind === "wait") return waitSummary(card.wait);
  if (card.kind === "split") return card.branches.filter((item) => item.steps).map((item) => `${item.name} ${item.percent} %`).join(" · ");
  if (card.kind === "action") {
    const params = Object.values(card.params || {}).filter((value) => typeof value === "string" || Array.isArray(value));
    return params.length ? params.map((value) => (Array.isArray(value) ? value.join(", ") : value)).join(" · ").slice(0, 90) : "";
  }
  return "";
}

function refreshSummaries() {
  root.querySelectorAll(".wf-card").forEach((element) => {
    const found = findCard(state.model, element.dataset.uid);
    const summary = element.querySelector(":scope > header .wf-card-summary");
    if (found && summary) summary.textContent = summaryText(found.card);
  });
  const triggerSummary = root.querySelector(".wf-trigger-summary");
  if (triggerSummary) triggerSummary.textContent = triggerSummaryText();
}

function conditionBody(card) {
  if (state.readOnly) return h("p", { class: "wf-readonly-text" }, describeCondition(card.condition, ctx));
  return conditionEditor(card.condition, ctx, { onReplace: (replacement) => { card.condition = replacement; markDirty(); render(); } });
}

const WAIT_UNITS = [["minutes", "minutes"], ["hours", "hours"], ["days", "days"]];
function waitSummary(wait) {
  if (!wait || typeof wait !== "object") return "";
  const parts = WAIT_UNITS.filter(([key]) => wait[key]).map(([key, label]) => `${wait[key]} ${label}`);
  if (wait.until_time) parts.push(`until ${wait.until_time}${wait.weekdays?.length ? ` on ${wait.weekdays.map((d) => WEEKDAYS[d]).join(", ")}` : ""}`);
  return parts.length ? `Wait ${parts.join(" ")}` : "Wait";
}

const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

function waitBody(card) {
  const wait = card.wait || {};
  const keys = Object.keys(wait);
  const duration = keys.length === 1 && WAIT_UNITS.some(([key]) => key === keys[0]);
  const untilTime = keys.length && keys.every((key) => key === "until_time" || key === "weekdays");
  if (!duration && !untilTime) return h("pre", { class: "wf-raw" }, JSON.stringify(wait));
  const disabled = state.readOnly || undefined;
  const mode = h("select", { id: `${card.uid}-mode`, "aria-label": "Wait kind", disabled },
    option("duration", "for a duration", duration), option("until", "until a time of day", untilTime));
  mode.addEventListener("change", () => {
    card.wait = mode.value === "duration" ? { days: 1 } : { until_time: "09:00" };
    markDirty();
    render(`${card.uid}-mode`);
  });
  if (duration) {
    const unit = keys[0];
    const amount = h("input", { id: `${card.uid}-amount`, type: "number", min: "1", step: "1", class: "wf-num", value: String(wait[unit] ?? ""), "aria-label": "Wait for", dataset: { path: `wait.${unit}` }, disabled });
    const unitSelect = h("select", { id: `${card.uid}-unit`, "aria-label": "Unit", disabled }, WAIT_UNITS.map(([key, label]) => option(key, label, key === unit)));
    const sync = () => {
      card.wait = { [unitSelect.value]: amount.value === "" ? null : Number(amount.value) };
      markDirty();
      refreshSummaries();
    };
    amount.addEventListener("input", sync);
    unitSelect.addEventListener("change", sync);
    return h("div", { class: "wf-row" }, h("label", { for: amount.id }, "Wait"), mode, amount, unitSelect,
      h("span", { class: "wf-muted" }, "then continue; conditions after a wait see fresh data."));
  }
  const time = h("input", { id: `${card.uid}-time`, type: "time", value: wait.until_time || "", "aria-label": "Time of day", dataset: { path: "wait.until_time" }, disabled });
  time.addEventListener("input", () => { card.wait.until_time = time.value; markDirty(); refreshSummaries(); });
  const days = new Set(wait.weekdays || []);
  const boxes = WEEKDAYS.map((label, index) => {
    const box = h("input", { type: "checkbox", id: `${card.uid}-wd${index}`, checked: days.has(index) || undefined, disabled });
    box.addEventListener("change", () => {
      if (box.checked) days.add(index); else days.delete(index);
      if (days.size) card.wait.weekdays = [...days].sort(); else delete card.wait.weekdays;
      markDirty();
      refreshSummaries();
    });
    return h("label", { class: "wf-weekday", for: box.id }, box, label);
  });
  return h("div", {},
    h("div", { class: "wf-row" }, h("label", { for: mode.id }, "Wait"), mode, time),
    h("div", { class: "wf-row", role: "group", "aria-label": "On weekdays" }, h("span", { class: "wf-label" }, "on"), boxes,
      h("span", { class: "wf-muted" }, "none ticked: any day")));
}

function actionBody(card) {
  const definition = ACTIONS.get(card.action);
  const picker = h("select", { id: `${card.uid}-action`, class: "wf-action-select", "aria-label": "Action", disabled: state.readOnly || undefined, dataset: { path: "action" } },
    option("", "— choose an action —", !card.action),
    groupBy(boot.catalog.actions, "group").map(([group, actions]) => h("optgroup", { label: group },
      actions.map((action) => option(action.name, action.label, action.name === card.action)))));
  if (card.action && !definition) picker.append(option(card.action, card.action, true));
  picker.addEventListener("change", () => {
    card.action = picker.value;
    const chosen = ACTIONS.get(card.action);
    card.params = {};
    for (const param of chosen?.params || []) if (param.default !== undefined && param.default !== null) card.params[param.name] = param.default;
    markDirty();
    const first = chosen?.params?.[0];
    render(first ? `${card.uid}-p-${first.name}` : picker.id);
  });
  const rows = [h("div", { class: "wf-row" }, h("label", { for: picker.id }, "Do"), picker,
    definition?.description ? h("span", { class: "wf-muted" }, definition.description) : null)];
  for (const param of definition?.params || []) rows.push(paramRow(card, param));
  const unknown = Object.keys(card.params).filter((name) => !(definition?.params || []).some((param) => param.name === name));
  for (const name of unknown) rows.push(h("div", { class: "wf-row" }, h("span", { class: "wf-label" }, name), h("code", {}, JSON.stringify(card.params[name]))));
  return h("div", { class: "wf-action-form" }, rows);
}

function groupBy(items, key) {
  const groups = new Map();
  for (const item of items) {
    const name = item[key] || "Other";
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(item);
  }
  return [...groups];
}

function paramRow(card, param) {
  const id = `${card.uid}-p-${param.name}`;
  const path = `params.${param.name}`;
  const value = card.params[param.name];
  const set = (next) => {
    if (next === undefined || next === "" || (Array.isArray(next) && !next.length)) delete card.params[param.name];
    else card.params[param.name] = next;
    markDirty();
    refreshSummaries();
  };
  let input;
  const label = param.label || param.name;
  const type = param.type || "string";
  if (state.readOnly) {
    input = h("span", { class: "wf-readonly-text" }, formatValue(value));
  } else if (type === "tags" || type === "strings" || type === "list") {
    input = listEditor({ id, label, values: Array.isArray(value) ? value : [], onChange: set, suggestions: type === "tags" ? boot.suggestions.tags || [] : [], ctx, allowParams: param.dynamic !== false, path, placeholder: type === "tags" ? "Tag name, Enter to add" : undefined });
  } else if (param.choices?.length) {
    input = choiceInput({ id, label, value, choices: param.choices, onChange: set, path });
  } else if (["int", "integer", "number", "decimal", "money", "points"].includes(type)) {
    input = numberInput({ id, label, value, onChange: set, money: type === "money" || type === "decimal", path, currency: type === "money" ? boot.catalog.shop_currency?.symbol || "" : "" });
  } else if (type === "bool" || type === "boolean") {
    input = h("input", { id, type: "checkbox", checked: Boolean(value), "aria-label": label, dataset: { path } });
    input.addEventListener("change", () => set(input.checked));
  } else if (type === "json" || type === "object") {
    input = h("textarea", { id, rows: 3, "aria-label": label, dataset: { path } });
    input.value = value === undefined ? "" : JSON.stringify(value);
    input.addEventListener("input", () => { try { set(input.value ? JSON.parse(input.value) : undefined); input.setCustomValidity(""); } catch { input.setCustomValidity("Invalid JSON"); } });
  } else if (param.dynamic) {
    input = textWithParams({ id, label, value, onInput: (text) => set(text), ctx, multiline: ["body", "message", "text"].includes(param.name), path });
  } else {
    const kind = { url: "url", email: "email" }[param.input] || "text";
    input = h("input", { id, type: kind, "aria-label": label, dataset: { path } });
    input.value = value ?? "";
    input.addEventListener("input", () => set(input.value));
  }
  return h("div", { class: `wf-row wf-param${param.required ? " is-required" : ""}` },
    h("label", { for: id }, label, param.required ? h("span", { class: "wf-req", "aria-hidden": "true" }, " *") : null),
    input, param.help ? h("span", { class: "wf-help" }, param.help) : null);
}

// --- Trigger card -------------------------------------------------------------------------------

function triggerCard() {
  const trigger = state.model.trigger;
  const info = triggerInfo();
  const select = h("select", { id: "wf-trigger-event", "aria-label": "Trigger", disabled: state.readOnly || undefined, dataset: { path: "event" } },
    option("", "— choose what starts the workflow —", !trigger.event),
    groupBy(boot.catalog.triggers, "group").map(([group, triggers]) => h("optgroup", { label: group },
      triggers.map((item) => option(item.name, item.label, item.name === trigger.event)))));
  if (trigger.event && !info) select.append(option(trigger.event, trigger.event, true));
  select.addEventListener("change", () => {
    triggerChoose(select.value);
    render("wf-trigger-event");
  });
  const stateTag = isStateTag(state.model);
  const filter = trigger.where
    ? h("div", { class: "wf-trigger-filter" },
      h("div", { class: "wf-row" }, h("strong", {}, stateTag ? "Customers who match" : "Only when"),
        state.readOnly || stateTag ? null : h("button", { type: "button", class: "wf-link", onclick: () => { trigger.where = null; markDirty(); render(); } }, "Remove filter")),
      state.readOnly ? h("p", { class: "wf-readonly-text" }, describeCondition(trigger.where, ctx))
        : conditionEditor(trigger.where, ctx, { onReplace: (replacement) => { trigger.where = replacement; markDirty(); render(); } }))
    : state.readOnly ? null : h("button", {
      type: "button", class: "wf-link", id: "wf-add-filter",
      onclick: () => { trigger.where = newGroup("all", [newRule()]); markDirty(); render(`${trigger.where.children[0].uid}-field`); },
    }, stateTag ? "+ Add the condition its customers match" : "+ Add a filter (only run when…)");
  const traced = state.trace?.trigger;
  return h("section", { class: `wf-card wf-card-trigger${state.errors.some((e) => e.target === "trigger") ? " has-errors" : ""}`, dataset: { uid: "trigger" }, "aria-label": "Trigger" },
    h("header", { class: "wf-card-head" }, h("span", { class: "wf-card-icon", "aria-hidden": "true" }, "◉"),
      h("span", { class: "wf-card-kind" }, "Trigger"), h("span", { class: "wf-card-summary wf-trigger-summary" }, triggerSummaryText()),
      traced ? h("span", { class: `wf-trace-badge ${traced.passed ? "is-green" : "is-red"}` }, traced.passed ? "filter passed" : "filter failed") : null),
    cardErrors("trigger"),
    h("div", { class: "wf-card-body" },
      h("div", { class: "wf-row" }, h("label", { for: select.id }, "When"), select),
      info?.description ? h("p", { class: "wf-help" }, info.description) : null,
      trigger.event ? filter : triggerChoices()));
}

function triggerSummaryText() {
  const where = state.model.trigger.where;
  if (!where) return "";
  return `${isStateTag(state.model) ? "Customers who match:" : "Only when"} ${describeCondition(where, ctx)}`;
}

function triggerChoose(name) {
  state.model.trigger.event = name;
  if (isStateTag(state.model)) stateTagPrepare(state.model);
  markDirty();
}

// With no trigger chosen yet: every trigger as a described button, grouped.
function triggerChoices() {
  if (state.readOnly) return null;
  return h("div", { class: "wf-trigger-choices", role: "group", "aria-label": "Choose a trigger" },
    groupBy(boot.catalog.triggers, "group").map(([group, triggers]) => [
      h("p", { class: "wf-trigger-group" }, group),
      triggers.map((item) => h("button", {
        type: "button", class: "wf-trigger-choice", dataset: { trigger: item.name },
        onclick: () => { triggerChoose(item.name); render("wf-trigger-event"); },
      }, h("strong", {}, item.label), item.description ? h("span", {}, item.description) : null)),
    ]));
}

// --- Side panel: settings and test run ----------------------------------------------------------

// Condition-valued settings (the bulk audience) keep one node tree across renders so focus survives.
const settingNodes = {};
function settingNode(name) {
  const value = state.settings[name];
  if (!value) return null;
  if (!settingNodes[name]) settingNodes[name] = conditionToNode(value);
  return settingNodes[name];
}

function audienceEditor(setting, id) {
  const node = settingNode(setting.name);
  const store = () => { state.settings[setting.name] = settingNodes[setting.name] ? nodeToCondition(settingNodes[setting.name]) : null; };
  if (!node) {
    return h("div", {}, h("p", { class: "wf-muted" }, "All customers."), state.readOnly ? null : h("button", {
      type: "button", class: "wf-link", id,
      onclick: () => { settingNodes[setting.name] = newGroup("all", [newRule()]); store(); markDirty(); render(`${settingNodes[setting.name].children[0].uid}-field`); },
    }, "+ Limit the audience"));
  }
  if (state.readOnly) return h("p", { class: "wf-readonly-text" }, describeCondition(node, ctx));
  const audienceCtx = {
    ...ctx,
    fieldsInScope: (scope) => (scope ? ctx.fieldsInScope(scope) : boot.catalog.fields.filter((field) => field.scope === "customer" && field.audience !== false)),
    changed: (structural, focusId) => { store(); ctx.changed(structural, focusId); },
  };
  return h("div", { class: "wf-audience" },
    conditionEditor(node, audienceCtx, { onReplace: (replacement) => { settingNodes[setting.name] = replacement; store(); markDirty(); render(); } }),
    h("button", { type: "button", class: "wf-link", onclick: () => { delete settingNodes[setting.name]; store(); markDirty(); render(); } }, "Use all customers"));
}

function settingsPanel() {
  const rows = [];
  const bulk = Boolean(triggerInfo()?.bulk);
  rows.push(h("div", { class: "wf-field-row" }, h("label", { for: "wf-description" }, "Description"),
    (() => {
      const area = h("textarea", { id: "wf-description", rows: 2, disabled: state.readOnly || undefined });
      area.value = state.description;
      area.addEventListener("input", () => { state.description = area.value; markDirty(); });
      return area;
    })()));
  for (const setting of boot.settings_schema) {
    if (setting.bulk_only && !bulk) continue;
    const id = `wf-setting-${setting.name}`;
    const value = state.settings[setting.name];
    const set = (next) => { state.settings[setting.name] = next === "" ? null : next; markDirty(); };
    let input;
    if (setting.type === "condition") {
      input = audienceEditor(setting, id);
    } else if (setting.choices) {
      input = choiceInput({ id, label: setting.label, value: value ?? "", choices: setting.choices, onChange: (v) => set(v ?? null), path: setting.name });
    } else {
      const type = { int: "number", datetime: "datetime-local", date: "date" }[setting.type] || "text";
      input = h("input", { id, type, min: type === "number" ? "0" : undefined, dataset: { path: setting.name }, placeholder: setting.placeholder, disabled: state.readOnly || undefined });
      input.value = value === null || value === undefined ? "" : type === "datetime-local" ? String(value).slice(0, 16) : String(value);
      input.addEventListener("input", () => set(type === "number" ? (input.value === "" ? "" : Number(input.value)) : input.value));
    }
    const errors = state.errors.filter((error) => error.target === "settings" && error.rest.split(/[.[]/)[0] === setting.name);
    rows.push(h("div", { class: `wf-field-row${errors.length ? " has-errors" : ""}` },
      h("label", { for: id }, setting.label), input,
      setting.help ? h("span", { class: "wf-help" }, setting.help) : null,
      errors.length ? h("ul", { class: "wf-errors", role: "alert" }, errors.map((error) => h("li", {}, error.message))) : null));
  }
  const general = state.errors.filter((error) => error.target === "settings" && !boot.settings_schema.some((s) => error.rest.split(/[.[]/)[0] === s.name));
  return h("section", { class: "wf-panel", "aria-labelledby": "wf-settings-title" },
    h("h2", { id: "wf-settings-title" }, "Trigger settings"),
    general.length ? h("ul", { class: "wf-errors", role: "alert" }, general.map((error) => h("li", {}, error.rest ? `${error.rest}: ` : "", error.message))) : null,
    rows);
}

const testState = { customer: null, subjects: [], subject: "", matches: [], running: false, message: "" };

function testPanel() {
  const info = triggerInfo();
  const search = h("input", { id: "wf-test-customer", type: "search", autocomplete: "off", placeholder: "Name, e-mail or id", role: "combobox", "aria-expanded": String(testState.matches.length > 0), "aria-controls": "wf-test-matches", "aria-autocomplete": "list" });
  search.value = testState.customer ? testState.customer.label : "";
  const matches = h("ul", { id: "wf-test-matches", class: "wf-matches", role: "listbox", hidden: !testState.matches.length || undefined },
    testState.matches.map((customer, index) => h("li", { role: "option", id: `wf-test-match-${index}`, tabindex: "-1", dataset: { id: customer.id },
      onclick: () => pickCustomer(customer), onkeydown: (event) => { if (event.key === "Enter") pickCustomer(customer); } }, customer.label)));
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    testState.customer = null;
    timer = setTimeout(async () => {
      const term = search.value.trim();
      if (!term) { testState.matches = []; return; }
      const response = await api("GET", `${boot.urls.customers}?q=${encodeURIComponent(term)}`);
      testState.matches = response.ok ? response.body.results : [];
      renderSide("wf-test-customer");
    }, 200);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && testState.matches.length) { event.preventDefault(); root.querySelector("#wf-test-match-0")?.focus(); }
    if (event.key === "Enter" && testState.matches.length) { event.preventDefault(); pickCustomer(testState.matches[0]); }
  });
  matches.addEventListener("keydown", (event) => {
    const items = [...matches.querySelectorAll("li")];
    const at = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown") { event.preventDefault(); items[Math.min(at + 1, items.length - 1)].focus(); }
    if (event.key === "ArrowUp") { event.preventDefault(); (at <= 0 ? search : items[at - 1]).focus(); }
  });
  const subjectRow = info?.subject && testState.customer ? (() => {
    const select = h("select", { id: "wf-test-subject" },
      option("", testState.subjects.length ? `— latest ${info.subject} —` : `— no ${info.subject} found —`, !testState.subject),
      testState.subjects.map((subject) => option(subject.id, subject.label, String(subject.id) === String(testState.subject))));
    select.addEventListener("change", () => { testState.subject = select.value; });
    return h("div", { class: "wf-field-row" }, h("label", { for: "wf-test-subject" }, `Use this ${info.subject}`), select);
  })() : null;
  const run = h("button", { type: "button", class: "button wf-primary", id: "wf-test-run", disabled: !testState.customer || testState.running || undefined, onclick: runTest }, testState.running ? "Testing…" : "Run test");
  const clear = state.trace ? h("button", { type: "button", class: "button", onclick: () => { state.trace = null; testState.message = ""; render(); } }, "Clear trace") : null;
  return h("section", { class: "wf-panel", "aria-labelledby": "wf-test-title" },
    h("h2", { id: "wf-test-title" }, "Test run"),
    h("p", { class: "wf-help" }, "Evaluates the workflow as it is on screen for one customer. Nothing is changed."),
    h("div", { class: "wf-field-row wf-combobox" }, h("label", { for: "wf-test-customer" }, "Customer"), search, matches),
    subjectRow,
    h("div", { class: "wf-buttons" }, run, clear),
    testState.message ? h("div", { class: "wf-test-result", role: "status" }, testState.message) : null,
    state.trace?.actions ? h("div", { class: "wf-would-run" }, h("h3", {}, "Would run"),
      state.trace.actions.length ? h("ol", {}, state.trace.actions.map((action) => h("li", {}, action))) : h("p", { class: "wf-muted" }, "No action.")) : null);
}

async function pickCustomer(customer) {
  testState.customer = customer;
  testState.matches = [];
  testState.subject = "";
  testState.subjects = [];
  const info = triggerInfo();
  if (info?.subject) {
    const response = await api("GET", `${boot.urls.subjects}?customer=${customer.id}&trigger=${encodeURIComponent(info.name)}`);
    testState.subjects = response.ok ? response.body.results : [];
    if (testState.subjects.length) testState.subject = String(testState.subjects[0].id);
  }
  renderSide("wf-test-run");
}

async function runTest() {
  testState.running = true;
  renderSide();
  const response = await api("POST", boot.urls.test, {
    definition: modelToDefinition(state.model), settings: state.settings,
    customer: testState.customer.id, subject: testState.subject || null,
  });
  testState.running = false;
  if (response.ok) {
    state.trace = indexTrace(response.body);
    state.errors = [];
    testState.message = response.body.summary || "Test finished.";
  } else {
    state.trace = null;
    setErrors(errorList(response.body));
    testState.message = "The test could not run: fix the errors shown on the cards.";
  }
  render();
}

// The server's trace -> lookups by step id and by condition uid (the server echoes the JSON paths).
function joinPath(base, key) {
  if (!key) return base;
  return key.startsWith("[") ? `${base}${key}` : `${base}.${key}`;
}

function ruleLabel(uid, { currency = false } = {}) {
  let label = null;
  const visit = (node) => {
    if (!node || label) return;
    if (node.uid === uid && node.kind === "rule") {
      const field = ctx.field(node.field);
      // `currency`: the money field itself (its trace value is shown with its currency).
      if (currency) label = field?.type === "money" ? field : "";
      else {
        const window = windowText(node.window);
        label = `${field?.label || node.field}${window ? `${window.replace(" in the last", " (last")})` : ""}`;
      }
      return;
    }
    if (node.kind === "group") node.children.forEach(visit);
    if (node.kind === "not") visit(node.child);
    if (node.kind === "rule" && node.where) visit(node.where);
  };
  visit(state.model.trigger.where);
  for (const entry of cardLists(state.model)) for (const card of entry.list) if (card.kind === "condition") visit(card.condition);
  return label;
}

// A traced amount with its currency: the shop currency's symbol ($120.00), or the record's own currency
// code for amounts in it (order.total of a EUR order: 120.00 EUR).
function moneyText(field, value, currencies) {
  if (typeof value !== "string" && typeof value !== "number") return value;
  if (field.own_currency) {
    const code = currencies[field.scope];
    return code ? `${value} ${code}` : value;
  }
  return field.currency ? `${field.currency}${value}` : value;
}

function humanKey(key) {
  return String(key).replace(/_/g, " ");
}

function indexTrace(body) {
  const trace = { steps: {}, conditions: {}, trigger: body.trigger || null, actions: body.actions || [] };
  for (const condition of body.conditions || []) {
    const found = locatePath(state.model, condition.path);
    if (found.conditionUid) trace.conditions[found.conditionUid] = { result: condition.result };
    for (const [key, value] of Object.entries(condition.values || {})) {
      const inner = locatePath(state.model, joinPath(condition.path, key));
      if (inner.conditionUid && inner.conditionUid !== found.conditionUid) {
        trace.conditions[inner.conditionUid] = { ...(trace.conditions[inner.conditionUid] || {}), actual: value };
      }
    }
  }
  for (const step of body.steps || []) {
    const details = (step.details || []).map(([key, value]) => {
      if (step.kind === "condition") {
        const found = locatePath(state.model, joinPath(`${step.path}.if`, key));
        const label = found.conditionUid ? ruleLabel(found.conditionUid) : null;
        const money = found.conditionUid ? ruleLabel(found.conditionUid, { currency: true }) : "";
        return [label || humanKey(key), money ? moneyText(money, value, body.currencies || {}) : value];
      }
      return [humanKey(key), value];
    });
    trace.steps[step.id] = { ...step, details };
  }
  return trace;
}

// --- State tag: the tag, its exclusive group and rank, "entered" and "left" steps -------------------

function carriersText() {
  const summary = state.workflow.state;
  if (!summary || !state.workflow.id) return "Not active yet: nobody carries it.";
  const count = summary.carriers;
  return `${count} customer${count === 1 ? " carries" : "s carry"} “${summary.tag}” now`;
}

function stateCard() {
  const block = state.model.state;
  const field = (id, label, input, help) => h("div", { class: "wf-field-row" },
    h("label", { for: id }, label), input, help ? h("p", { class: "wf-help" }, help) : null);
  const text = (id, path, value, onInput, placeholder) => {
    const input = h("input", { id, type: "text", value: value ?? "", placeholder, disabled: state.readOnly || undefined, dataset: { path } });
    input.addEventListener("input", () => { onInput(input.value); markDirty(); });
    return input;
  };
  const tag = !state.readOnly
    ? textWithParams({ id: "wf-state-tag", label: "They carry the tag", value: block.tag, ctx, path: "tag", placeholder: "e.g. High value",
      onInput: (value) => { block.tag = value; markDirty(); } })
    : text("wf-state-tag", "tag", block.tag, (value) => { block.tag = value; });
  const group = text("wf-state-group", "group", block.group, (value) => { block.group = value; }, "e.g. Spend tier (optional)");
  const rank = h("input", {
    id: "wf-state-rank", type: "number", min: "0", step: "1", class: "wf-num",
    value: block.rank === undefined || block.rank === null ? "" : String(block.rank), disabled: state.readOnly || undefined, dataset: { path: "rank" },
  });
  rank.addEventListener("input", () => { block.rank = rank.value === "" ? undefined : Number(rank.value); markDirty(); });
  const errors = state.errors.some((error) => error.target === "state");
  return h("section", { class: `wf-card wf-card-state${errors ? " has-errors" : ""}`, dataset: { uid: "state" }, "aria-label": "State tag" },
    h("header", { class: "wf-card-head" }, h("span", { class: "wf-card-icon", "aria-hidden": "true" }, "⚑"),
      h("span", { class: "wf-card-kind" }, "State tag"),
      h("span", { class: "wf-card-summary wf-state-count", "aria-live": "polite" }, carriersText())),
    cardErrors("state"),
    h("div", { class: "wf-card-body wf-state-fields" },
      field("wf-state-tag", "They carry the tag", tag, "Added when a customer starts matching, removed when they stop. {X} builds the name per customer."),
      field("wf-state-group", "Exclusive group", group, "State tags of one group: a customer carries at most one of them."),
      field("wf-state-rank", "Rank in the group", rank, "The highest matching rank wins (0 or more).")));
}

function stateTagFlow() {
  return [
    h("div", { class: "wf-connector", "aria-hidden": "true" }),
    stateCard(),
    h("h2", { class: "wf-flow-heading", id: "wf-entered-heading" }, "When a customer enters (starts matching)"),
    h("div", { role: "group", "aria-labelledby": "wf-entered-heading" }, stepList(state.model.steps, "entered")),
    h("h2", { class: "wf-flow-heading", id: "wf-left-heading" }, "When a customer leaves (stops matching)"),
    h("div", { role: "group", "aria-labelledby": "wf-left-heading" }, stepList(state.model.left, "left")),
    h("div", { class: "wf-end" }, "End"),
  ];
}

// --- Saving ---------------------------------------------------------------------------------------

function setErrors(list) {
  state.errors = list.map((error) => ({ ...error, ...locatePath(state.model, error.path) }));
}

function payload() {
  return { name: state.name, description: state.description, definition: modelToDefinition(state.model), settings: state.settings };
}

async function save(then = null) {
  state.busy = true;
  state.notice = null;
  renderToolbar();
  const response = await api("POST", boot.urls.save, payload());
  state.busy = false;
  if (!response.ok) {
    setErrors(errorList(response.body));
    state.notice = { kind: "error", text: `Not saved: ${state.errors.length} problem${state.errors.length === 1 ? "" : "s"} to fix (shown on the cards).` };
    render();
    const first = root.querySelector(".wf-errors");
    first?.closest(".wf-card, .wf-field-row, .wf-panel")?.scrollIntoView({ block: "center" });
    return false;
  }
  state.errors = [];
  state.dirty = false;
  state.workflow = response.body.workflow;
  state.notice = { kind: "success", text: response.body.message || "Saved." };
  if (response.body.redirect && then === null) {
    window.location.assign(response.body.redirect);
    return true;
  }
  if (then) return then();
  render();
  return true;
}

async function transition(kind) {
  if (state.dirty || !state.workflow.id) {
    const saved = await save(() => true);
    if (!saved) return;
  }
  state.busy = true;
  renderToolbar();
  const response = await api("POST", boot.urls[kind].replace("0", String(state.workflow.id)), {});
  state.busy = false;
  if (!response.ok) {
    setErrors(errorList(response.body));
    state.notice = { kind: "error", text: `Could not ${kind}: ${state.errors.map((e) => e.message).join(" ")}` };
  } else {
    state.workflow = response.body.workflow;
    state.notice = { kind: "success", text: response.body.message };
    if (response.body.redirect) { state.dirty = false; window.location.assign(response.body.redirect); return; }
    if (kind === "activate" && isStateTag(state.model)) carriersFollow(5);
  }
  render();
}

function carriersShow() {
  const count = root.querySelector(".wf-state-count");
  if (count) count.textContent = carriersText();
  // the page header (rendered by the server before an activation's recompute) says the same
  const header = document.querySelector(".wf-state-carriers");
  if (header && state.workflow.state) header.textContent = carriersText();
}

// Activation recomputes a state tag in the worker: follow its carrier count for a few seconds (bounded).
function carriersFollow(times) {
  if (times <= 0 || !state.workflow.id) return;
  window.setTimeout(async () => {
    const response = await api("GET", boot.urls.state.replace("0", String(state.workflow.id)));
    if (!response.ok) return;
    state.workflow.state = response.body.state;
    carriersShow();
    carriersFollow(times - 1);
  }, 1500);
}

function renderToolbar() {
  const bar = root.querySelector(".wf-toolbar");
  if (bar) bar.replaceWith(toolbar());
}

function toolbar() {
  const wf = state.workflow;
  const name = h("input", { id: "wf-name", type: "text", value: state.name, placeholder: "Workflow name", "aria-label": "Workflow name", class: "wf-name", disabled: state.readOnly || undefined, dataset: { path: "name" } });
  name.addEventListener("input", () => { state.name = name.value; markDirty(); });
  const status = wf.status || "draft";
  const nameErrors = state.errors.filter((error) => error.target === "settings" && error.rest === "name");
  return h("div", { class: "wf-toolbar" },
    h("div", { class: "wf-title" }, name,
      h("span", { class: `wf-status wf-status-${status}` }, status),
      wf.version ? h("span", { class: "wf-version" }, `v${wf.version}`) : null,
      state.readOnly ? null : h("span", { class: "wf-save-state", "aria-live": "polite" }, state.dirty ? "Unsaved changes" : wf.id ? "All changes saved" : "Not saved yet"),
      nameErrors.length ? h("span", { class: "wf-errors-inline", role: "alert" }, nameErrors.map((e) => e.message).join(" ")) : null),
    state.readOnly ? null : h("div", { class: "wf-actions" },
      h("button", { type: "button", class: "button", id: "wf-save", disabled: state.busy || undefined, onclick: () => save() }, "Save draft"),
      // Activate, pause and run now need the activate permission: not offered without it (the server refuses too).
      status === "active" && boot.can_activate
        ? h("button", { type: "button", class: "button", id: "wf-pause", disabled: state.busy || !wf.id || undefined, onclick: () => transition("pause") }, "Pause")
        : null,
      !boot.can_activate ? null : h("button", { type: "button", class: "button wf-primary", id: "wf-activate", disabled: state.busy || (status === "active" && !state.dirty && !wf.has_draft) || undefined, onclick: () => transition("activate") },
        status === "active" ? (state.dirty || wf.has_draft ? "Save & activate new version" : "Active") : "Activate"),
      boot.can_activate && wf.bulk && wf.id && status === "active" ? h("button", { type: "button", class: "button", id: "wf-run-now", onclick: () => transition("run") }, "Run now") : null));
}

function banner() {
  const items = [];
  if (state.notice) items.push(h("li", { class: state.notice.kind, role: state.notice.kind === "error" ? "alert" : "status" }, state.notice.text));
  const waiting = state.workflow.waiting_runs || 0;
  if (state.workflow.status === "active" && waiting) {
    items.push(h("li", { class: "warning" }, `${waiting} run${waiting === 1 ? " is" : "s are"} waiting on version ${state.workflow.version}. They finish on that version; a new version only applies to new runs.`));
  }
  if (state.workflow.status === "active" && state.workflow.has_draft && !boot.read_only) {
    items.push(h("li", { class: "warning" }, `Saved changes are not live yet: version ${state.workflow.version} keeps running until you activate them as a new version.`));
  }
  if (boot.read_only_reason) items.push(h("li", { class: "info" }, boot.read_only_reason));
  return items.length ? h("ul", { class: "messagelist wf-messages" }, items) : null;
}

// --- Rendering -----------------------------------------------------------------------------------

function render(focusId = null) {
  const active = focusId || document.activeElement?.id || null;
  const scrollY = window.scrollY;
  root.replaceChildren(...[
    toolbar(),
    banner(),
    h("div", { class: "wf-layout" },
      h("div", { class: "wf-flow", role: "region", "aria-label": "Workflow steps" },
        triggerCard(),
        ...(isStateTag(state.model) ? stateTagFlow() : [
          h("div", { class: "wf-connector", "aria-hidden": "true" }),
          stepList(state.model.steps, "root"),
          h("div", { class: "wf-end" }, "End")]),
      ),
      h("aside", { class: "wf-side" }, settingsPanel(), testPanel())),
  ].filter(Boolean));
  window.scrollTo(0, scrollY);
  markInvalidInputs();
  if (isStateTag(state.model)) carriersShow();
  if (active) {
    const element = document.getElementById(active);
    if (element) element.focus({ preventScroll: Boolean(!focusId) });
  }
}

// Point at the very input an error names ("params.tags", "value", "op"), not only at its card.
function markInvalidInputs() {
  for (const error of state.errors) {
    const scope = error.conditionUid
      ? root.querySelector(`[data-uid="${error.conditionUid}"]`)
      : error.target === "settings" ? root : root.querySelector(`.wf-card[data-uid="${error.target}"]`);
    if (!scope) continue;
    const rest = error.rest || "";
    // (the error list items carry their path too: they are not inputs)
    const candidates = [...scope.querySelectorAll("[data-path]")].filter((input) => {
      if (input.closest(".wf-errors")) return false;
      const path = input.dataset.path;
      return path && (rest === path || rest.startsWith(`${path}[`) || rest.startsWith(`${path}.`));
    });
    for (const input of candidates.slice(0, 1)) {
      input.classList.add("has-error");
      input.setAttribute("aria-invalid", "true");
    }
  }
}

function renderSide(focusId = null) {
  const side = root.querySelector(".wf-side");
  if (!side) return render(focusId);
  side.replaceChildren(settingsPanel(), testPanel());
  if (focusId) document.getElementById(focusId)?.focus();
}

document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s" && !state.readOnly) {
    event.preventDefault();
    save();
  }
});

if (isStateTag(state.model) && !state.workflow.id) stateTagPrepare(state.model);
if (boot.errors?.length) setErrors(boot.errors);
render();
root.dataset.ready = "true";
