// The condition editor: nested all/any/not groups, rules (field, window, operator, value) and list
// quantifiers (any/all/none ... where ...) drawn from the field catalog.
import { h, option } from "./dom.js";
import { choiceInput, dateInput, listEditor, numberInput } from "./inputs.js";
import { newGroup, newRule } from "./model.js";

// Operator labels and what each operator takes ("nothing", "value", "values", "where") come from the
// catalog's operator table (`ctx.operator(name)`, from the boot payload): no second table here.
function opLabel(op, field, ctx) {
  const spec = ctx.operator(op);
  if (!spec) return op;
  return field && ["date", "datetime"].includes(field.type) ? spec.date_label : spec.label;
}

function takes(op, ctx) {
  return ctx.operator(op)?.takes;
}

// A rule's window ({"days": 30}, {"hours": 1}, {"minutes": 15}) in words: " in the last 30 days".
export function windowText(window) {
  const [unit, amount] = Object.entries(window || {})[0] || [];
  return amount ? ` in the last ${amount} ${amount === 1 ? unit.replace(/s$/, "") : unit}` : "";
}

export function describeCondition(node, ctx) {
  // One line of plain text for a card's summary ("All of: Total spent is at least 500, ...").
  if (!node) return "";
  if (node.kind === "group") {
    const inner = node.children.map((child) => describeCondition(child, ctx)).join(node.mode === "all" ? " and " : " or ");
    return node.children.length > 1 ? `(${inner})` : inner;
  }
  if (node.kind === "not") return `not ${describeCondition(node.child, ctx)}`;
  if (node.kind === "rule") {
    const field = ctx.field(node.field);
    const name = field ? field.label : node.field || "…";
    const window = windowText(node.window);
    if (node.where) return `${name}${window} ${opLabel(node.op, field, ctx)} ${describeCondition(node.where, ctx)}`;
    let value = "";
    if (node.hasValue) {
      const raw = node.value;
      if (raw && typeof raw === "object" && "days_ago" in raw) value = ` ${raw.days_ago} days ago`;
      else if (Array.isArray(raw)) value = ` ${raw.join(", ")}`;
      else value = ` ${raw ?? ""}`;
    }
    return `${name}${window} ${opLabel(node.op, field, ctx)}${value}`;
  }
  return JSON.stringify(node.raw);
}

// Render a condition tree. `onRemove` (optional) removes this node from its parent.
export function conditionEditor(node, ctx, { scope = null, onRemove = null, onReplace = null, depth = 0 } = {}) {
  if (node.kind === "group") return groupEditor(node, ctx, { scope, onRemove, onReplace, depth });
  if (node.kind === "not") return notEditor(node, ctx, { scope, onRemove, onReplace, depth });
  if (node.kind === "rule") return ruleEditor(node, ctx, { scope, onRemove, onReplace, depth });
  return h("div", { class: "wf-rule wf-raw", dataset: { uid: node.uid } },
    h("code", {}, JSON.stringify(node.raw)), ctx.errorsFor(node.uid),
    onRemove ? removeButton("Remove condition", onRemove) : null);
}

function removeButton(label, onClick) {
  return h("button", { type: "button", class: "wf-icon wf-remove", "aria-label": label, title: label, onclick: onClick }, "✕");
}

function groupEditor(node, ctx, { scope, onRemove, onReplace, depth }) {
  const id = `${node.uid}-mode`;
  const mode = h("select", { id, class: "wf-group-mode", "aria-label": "Match" },
    option("all", "All of these", node.mode === "all"), option("any", "Any of these", node.mode === "any"));
  mode.addEventListener("change", () => { node.mode = mode.value; ctx.changed(); });
  const children = node.children.map((child, index) => conditionEditor(child, ctx, {
    scope, depth: depth + 1,
    onRemove: () => { node.children.splice(index, 1); ctx.changed(true); },
    onReplace: (replacement) => { node.children[index] = replacement; ctx.changed(true); },
  }));
  const addRule = h("button", {
    type: "button", class: "wf-link", onclick: () => { node.children.push(newRule()); ctx.changed(true, node.children.at(-1).uid); },
  }, "+ Condition");
  const addGroup = h("button", {
    type: "button", class: "wf-link", onclick: () => { node.children.push(newGroup(node.mode === "all" ? "any" : "all", [newRule()])); ctx.changed(true); },
  }, "+ Group");
  const negate = onReplace ? h("button", {
    type: "button", class: "wf-link", title: "Match when this group does NOT match",
    onclick: () => onReplace({ uid: `${node.uid}n`, kind: "not", child: node }),
  }, "Negate") : null;
  return h("fieldset", { class: `wf-group wf-depth-${Math.min(depth, 3)}`, dataset: { uid: node.uid } },
    h("legend", {}, h("label", { for: id, class: "wf-visually-hidden" }, "Match"), mode,
      onRemove ? removeButton("Remove group", onRemove) : null),
    ctx.errorsFor(node.uid),
    ctx.traceFor(node.uid),
    h("div", { class: "wf-group-children" }, children.length ? children : h("p", { class: "wf-muted" }, "No condition: always true.")),
    h("div", { class: "wf-group-add" }, addRule, addGroup, negate));
}

function notEditor(node, ctx, { scope, onRemove, onReplace, depth }) {
  return h("div", { class: "wf-not", dataset: { uid: node.uid } },
    h("div", { class: "wf-not-head" }, h("strong", {}, "NOT"),
      onReplace ? h("button", { type: "button", class: "wf-link", onclick: () => onReplace(node.child) }, "Remove NOT") : null,
      onRemove ? removeButton("Remove negated condition", onRemove) : null),
    ctx.errorsFor(node.uid),
    conditionEditor(node.child, ctx, { scope, depth: depth + 1, onReplace: (replacement) => { node.child = replacement; ctx.changed(true); } }));
}

function fieldSelect(node, ctx, scope) {
  const id = `${node.uid}-field`;
  const select = h("select", { id, class: "wf-field", "aria-label": "Field", dataset: { path: "field" } });
  select.append(option("", "— choose a field —", !node.field));
  const groups = new Map();
  for (const field of ctx.fieldsInScope(scope)) {
    if (!groups.has(field.group)) groups.set(field.group, []);
    groups.get(field.group).push(field);
  }
  let known = false;
  const current = ctx.field(node.field);
  for (const [group, fields] of groups) {
    select.append(h("optgroup", { label: group }, fields.map((field) => {
      const selected = field === current;
      if (selected) known = true;
      return option(field.name, field.label, selected);
    })));
  }
  if (node.field && !known) select.append(option(node.field, node.field, true));
  select.addEventListener("change", () => {
    const field = ctx.field(select.value);
    node.field = select.value.endsWith(".*") ? select.value.slice(0, -1) : select.value;
    node.op = field?.ops?.[0] || "";
    node.value = undefined;
    node.hasValue = false;
    node.window = null;
    node.where = takes(node.op, ctx) === "where" && field?.item ? newGroup("all", [newRule()]) : null;
    ctx.changed(true, `${node.uid}-op`);
  });
  return select;
}

function valueEditor(node, field, ctx) {
  const id = `${node.uid}-value`;
  const label = `Value for ${field?.label || node.field || "condition"}`;
  const set = (value) => {
    node.value = value;
    node.hasValue = value !== undefined;
    ctx.changed();
  };
  const type = field?.type || "text";
  const choices = ctx.choicesFor(field);
  if (takes(node.op, ctx) === "values") {
    return listEditor({ id, label, values: Array.isArray(node.value) ? node.value : [], onChange: (v) => set(v.length ? v : undefined), suggestions: choices.map((c) => c.value), path: "value" });
  }
  if (type === "date" || type === "datetime") return dateInput({ id, label, value: node.value, onChange: set, path: "value" });
  if (type === "bool" || type === "boolean") {
    return choiceInput({ id, label, value: node.hasValue ? String(node.value) : undefined, choices: [{ value: "true", label: "yes" }, { value: "false", label: "no" }], onChange: (v) => set(v === undefined ? undefined : v === "true"), path: "value" });
  }
  if (["number", "int", "integer", "decimal", "money"].includes(type)) {
    return numberInput({ id, label, value: node.value, onChange: set, money: type === "money" || type === "decimal", path: "value", currency: type === "money" ? field?.currency || "" : "" });
  }
  // Fixed choices (channel, state) are a select; picker suggestions (tags, countries...) only help typing.
  if (field?.choices?.length) return choiceInput({ id, label, value: node.value, choices, onChange: set, path: "value" });
  const input = h("input", { id, type: "text", "aria-label": label, list: choices.length ? `${id}-options` : undefined, dataset: { path: "value" } });
  input.value = node.value ?? "";
  input.addEventListener("input", () => set(input.value === "" ? undefined : input.value));
  return h("span", {}, input, choices.length ? h("datalist", { id: `${id}-options` }, choices.map((c) => option(c.value, c.label ?? c.value))) : null);
}

function wildcardKey(node, field) {
  const prefix = field.name.slice(0, -1);
  const id = `${node.uid}-key`;
  const input = h("input", {
    id, type: "text", class: "wf-key", "aria-label": `${field.label} name`, placeholder: "name",
    value: node.field.startsWith(prefix) ? node.field.slice(prefix.length) : "", dataset: { path: "field" },
  });
  input.addEventListener("input", () => { node.field = prefix + input.value.trim(); });
  return input;
}

function ruleEditor(node, ctx, { scope, onRemove, onReplace, depth }) {
  const field = ctx.field(node.field);
  const parts = [fieldSelect(node, ctx, scope)];
  if (field?.name.endsWith(".*")) parts.push(wildcardKey(node, field));
  if (field?.windowable || node.window) {
    // The window's unit: days for customer figures; minutes, hours or days for velocity (fraud) fields.
    const units = field?.window_units?.length ? field.window_units : ["days"];
    const given = Object.keys(node.window || {})[0];
    let unit = units.includes(given) ? given : units[0];
    const id = `${node.uid}-window`;
    const input = h("input", {
      id, type: "number", min: "1", step: "1", class: "wf-num",
      "aria-label": units.length > 1 ? "In the last" : `In the last (${unit})`,
      value: node.window?.[unit] ?? "", placeholder: "all time", dataset: { path: "window" },
    });
    const apply = () => {
      node.window = input.value === "" ? null : { [unit]: Number(input.value) };
      ctx.changed();
    };
    input.addEventListener("input", apply);
    let unitPart = h("span", {}, unit);
    if (units.length > 1) {
      unitPart = h("select", { class: "wf-window-unit", "aria-label": "Window unit", dataset: { path: "window" } },
        ...units.map((name) => option(name, name, name === unit)));
      unitPart.addEventListener("change", () => { unit = unitPart.value; apply(); });
    }
    parts.push(h("span", { class: "wf-window" }, h("label", { for: id }, "in the last"), input, unitPart));
  }
  const ops = field?.ops?.length ? [...field.ops] : node.op ? [node.op] : [];
  if (node.op && !ops.includes(node.op)) ops.push(node.op);
  const opSelect = h("select", { id: `${node.uid}-op`, class: "wf-op", "aria-label": "Operator", dataset: { path: "op" } },
    ops.map((op) => option(op, opLabel(op, field, ctx), op === node.op)));
  opSelect.addEventListener("change", () => {
    const before = node.op;
    node.op = opSelect.value;
    if (takes(node.op, ctx) === "where" && field?.item) {
      if (!node.where) node.where = newGroup("all", [newRule()]);
      node.hasValue = false;
      node.value = undefined;
    } else {
      node.where = null;
      if (takes(node.op, ctx) === "nothing") {
        node.hasValue = false;
        node.value = undefined;
      } else if ((takes(node.op, ctx) === "values") !== (takes(before, ctx) === "values")) {
        node.value = undefined;
        node.hasValue = false;
      }
    }
    ctx.changed(true, `${node.uid}-op`);
  });
  parts.push(opSelect);
  const quantified = node.where && takes(node.op, ctx) === "where";
  if (!quantified && takes(node.op, ctx) !== "nothing" && node.op) parts.push(valueEditor(node, field, ctx));
  const toNot = onReplace ? h("button", {
    type: "button", class: "wf-icon", title: "Negate (NOT)", "aria-label": "Negate condition",
    onclick: () => onReplace({ uid: `${node.uid}n`, kind: "not", child: node }),
  }, "¬") : null;
  return h("div", { class: "wf-rule", dataset: { uid: node.uid } },
    h("div", { class: "wf-rule-row" }, parts, h("span", { class: "wf-rule-tools" }, toNot, onRemove ? removeButton("Remove condition", onRemove) : null)),
    ctx.errorsFor(node.uid),
    ctx.traceFor(node.uid),
    quantified ? h("div", { class: "wf-where" }, h("span", { class: "wf-muted" }, `each ${field?.item_label || "item"}:`),
      conditionEditor(node.where, ctx, { scope: field?.item, depth: depth + 1, onReplace: (replacement) => { node.where = replacement; ctx.changed(true); } })) : null);
}
