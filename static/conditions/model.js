// The condition language as editable nodes (DESIGN.md "The condition language"): JSON -> nodes -> JSON,
// and error paths ("all[1].value") -> the node they belong to. Nodes carry a `uid` the editors use to
// find them (errors, trace, focus); what the editor does not know is kept so a condition round-trips.
// Pure functions only: no DOM here, so the module runs in node and in the browser alike.

let uidCounter = 0;
export function nextUid(prefix = "n") {
  uidCounter += 1;
  return `${prefix}${uidCounter}`;
}

const GROUP_KEYS = ["all", "any"];

export function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

export function rest(source, known) {
  const extra = {};
  for (const [key, value] of Object.entries(source)) {
    if (!known.includes(key)) extra[key] = clone(value);
  }
  return extra;
}

// --- Conditions ---------------------------------------------------------------------------------

export function conditionToNode(condition) {
  if (!isObject(condition)) return { uid: nextUid("c"), kind: "raw", raw: clone(condition) };
  const keys = Object.keys(condition);
  for (const mode of GROUP_KEYS) {
    if (keys.length === 1 && keys[0] === mode && Array.isArray(condition[mode])) {
      return { uid: nextUid("c"), kind: "group", mode, children: condition[mode].map(conditionToNode) };
    }
  }
  if (keys.length === 1 && keys[0] === "not") {
    return { uid: nextUid("c"), kind: "not", child: conditionToNode(condition.not) };
  }
  if (typeof condition.field === "string") {
    const node = {
      uid: nextUid("c"),
      kind: "rule",
      field: condition.field,
      op: condition.op ?? "",
      hasValue: Object.prototype.hasOwnProperty.call(condition, "value"),
      value: clone(condition.value),
      window: isObject(condition.window) ? clone(condition.window) : null,
      hasWindow: Object.prototype.hasOwnProperty.call(condition, "window"),
      where: Object.prototype.hasOwnProperty.call(condition, "where") ? conditionToNode(condition.where) : null,
      extra: rest(condition, ["field", "op", "value", "window", "where"]),
    };
    if (node.hasWindow && !isObject(condition.window)) node.extra.window = clone(condition.window);
    return node;
  }
  return { uid: nextUid("c"), kind: "raw", raw: clone(condition) };
}

export function nodeToCondition(node) {
  switch (node.kind) {
    case "group":
      return { [node.mode]: node.children.map(nodeToCondition) };
    case "not":
      return { not: nodeToCondition(node.child) };
    case "rule": {
      const condition = { field: node.field };
      if (node.window) condition.window = clone(node.window);
      condition.op = node.op;
      if (node.hasValue) condition.value = clone(node.value);
      if (node.where) condition.where = nodeToCondition(node.where);
      return Object.assign(condition, clone(node.extra));
    }
    default:
      return clone(node.raw);
  }
}

export function newRule(field = "", op = "", value = undefined) {
  return {
    uid: nextUid("c"), kind: "rule", field, op, hasValue: value !== undefined, value,
    window: null, hasWindow: false, where: null, extra: {},
  };
}

export function newGroup(mode = "all", children = []) {
  return { uid: nextUid("c"), kind: "group", mode, children };
}

// --- Paths ---------------------------------------------------------------------------------------

// Map an API error path ("all[1].not.value") to the node it belongs to.
const SEGMENT = /^([A-Za-z_][\w-]*)|^\[(\d+)\]|^\.([A-Za-z_][\w-]*)/;

export function parsePath(path) {
  const parts = [];
  let remaining = String(path || "");
  while (remaining.length) {
    const match = remaining.match(SEGMENT);
    if (!match) {
      parts.push(remaining);
      break;
    }
    if (match[2] !== undefined) parts.push(Number(match[2]));
    else parts.push(match[1] ?? match[3]);
    remaining = remaining.slice(match[0].length);
  }
  return parts;
}

export function conditionNodeAt(node, parts) {
  // Follow all[1].not.any[0].where ... as far as the node tree goes; returns the deepest node reached.
  let current = node;
  let index = 0;
  while (current && index < parts.length) {
    const part = parts[index];
    if (current.kind === "group" && part === current.mode && typeof parts[index + 1] === "number") {
      const child = current.children[parts[index + 1]];
      if (!child) break;
      current = child;
      index += 2;
    } else if (current.kind === "not" && part === "not") {
      current = current.child;
      index += 1;
    } else if (current.kind === "rule" && part === "where" && current.where) {
      current = current.where;
      index += 1;
    } else {
      break;
    }
  }
  return { node: current, rest: parts.slice(index) };
}

export function joinParts(parts) {
  return parts.map((part, i) => (typeof part === "number" ? `[${part}]` : i ? `.${part}` : part)).join("");
}

// The deepest node of `root` an error path under it reaches, and what is left of the path
// ("all[0].value" -> {node: <the rule>, rest: "value"}).
export function locateConditionPath(root, path) {
  const found = conditionNodeAt(root, parsePath(path));
  return { node: found.node, uid: found.node?.uid, rest: joinParts(found.rest) };
}
