// The builder's model: a workflow definition (DESIGN.md "Workflow definition") turned into cards and back.
//
// Cards carry a `uid` the page uses to find them (errors, trace, focus); everything the builder does not
// edit itself is kept in `extra` so a definition always round-trips unchanged through the builder.
// Pure functions only: no DOM here, so the module runs in node and in the browser alike.

import {
  clone, conditionNodeAt, conditionToNode, isObject, joinParts, newGroup, newRule, nextUid, nodeToCondition, parsePath, rest,
} from "../../conditions/model.js";

// --- Steps --------------------------------------------------------------------------------------

export function stepToCard(step) {
  if (!isObject(step)) return { uid: nextUid("s"), kind: "raw", raw: clone(step) };
  if (Object.prototype.hasOwnProperty.call(step, "if")) {
    return {
      uid: nextUid("s"),
      kind: "condition",
      id: step.id,
      condition: conditionToNode(step.if),
      then: (Array.isArray(step.then) ? step.then : []).map(stepToCard),
      else: (Array.isArray(step.else) ? step.else : []).map(stepToCard),
      hasThen: Array.isArray(step.then),
      hasElse: Array.isArray(step.else),
      extra: rest(step, ["id", "if", "then", "else"]),
      hasId: Object.prototype.hasOwnProperty.call(step, "id"),
    };
  }
  if (typeof step.action === "string") {
    return {
      uid: nextUid("s"),
      kind: "action",
      id: step.id,
      action: step.action,
      params: isObject(step.params) ? clone(step.params) : {},
      hasParams: Object.prototype.hasOwnProperty.call(step, "params"),
      extra: rest(step, ["id", "action", "params"]),
      hasId: Object.prototype.hasOwnProperty.call(step, "id"),
    };
  }
  if (Array.isArray(step.split)) {
    // An A/B split: named branches with percents, each a list of steps (shown as side-by-side branches).
    return {
      uid: nextUid("s"),
      kind: "split",
      id: step.id,
      branches: step.split.map(splitBranchToModel),
      extra: rest(step, ["id", "split"]),
      hasId: Object.prototype.hasOwnProperty.call(step, "id"),
    };
  }
  if (Object.prototype.hasOwnProperty.call(step, "wait")) {
    return {
      uid: nextUid("s"),
      kind: "wait",
      id: step.id,
      wait: clone(step.wait),
      extra: rest(step, ["id", "wait"]),
      hasId: Object.prototype.hasOwnProperty.call(step, "id"),
    };
  }
  return { uid: nextUid("s"), kind: "raw", raw: clone(step) };
}

function splitBranchToModel(branch) {
  if (!isObject(branch)) return { uid: nextUid("b"), raw: clone(branch) };
  return {
    uid: nextUid("b"),
    name: branch.name,
    percent: branch.percent,
    hasName: Object.prototype.hasOwnProperty.call(branch, "name"),
    hasPercent: Object.prototype.hasOwnProperty.call(branch, "percent"),
    steps: (Array.isArray(branch.steps) ? branch.steps : []).map(stepToCard),
    hasSteps: Array.isArray(branch.steps),
    extra: rest(branch, ["name", "percent", "steps"]),
  };
}

function splitBranchToStep(branch) {
  if (Object.prototype.hasOwnProperty.call(branch, "raw")) return clone(branch.raw);
  const out = {};
  if (branch.hasName || branch.name !== undefined) out.name = branch.name;
  if (branch.hasPercent || branch.percent !== undefined) out.percent = branch.percent;
  if (branch.hasSteps || branch.steps.length) out.steps = branch.steps.map(cardToStep);
  return Object.assign(out, clone(branch.extra));
}

export function cardToStep(card) {
  const step = {};
  if (card.kind === "raw") return clone(card.raw);
  if (card.hasId || card.id !== undefined) step.id = card.id;
  if (card.kind === "condition") {
    step.if = nodeToCondition(card.condition);
    if (card.hasThen || card.then.length) step.then = card.then.map(cardToStep);
    if (card.hasElse || card.else.length) step.else = card.else.map(cardToStep);
  } else if (card.kind === "action") {
    step.action = card.action;
    if (card.hasParams || Object.keys(card.params).length) step.params = clone(card.params);
  } else if (card.kind === "wait") {
    step.wait = clone(card.wait);
  } else if (card.kind === "split") {
    step.split = card.branches.map(splitBranchToStep);
  }
  return Object.assign(step, clone(card.extra));
}

// --- Definition ---------------------------------------------------------------------------------

// A state tag (trigger `customer.state_tag`): customers matching `trigger.where` carry `state.tag`; `steps`
// run when a customer enters, `left` when they leave (apps/automations/definitions.py).
export const STATE_TRIGGER = "customer.state_tag";

export function isStateTag(model) {
  return model.trigger.event === STATE_TRIGGER;
}

function stateToModel(block) {
  const source = isObject(block) ? block : {};
  return {
    tag: source.tag ?? "",
    group: source.group ?? "",
    rank: source.rank,
    hasGroup: Object.prototype.hasOwnProperty.call(source, "group"),
    hasRank: Object.prototype.hasOwnProperty.call(source, "rank"),
    extra: rest(source, ["tag", "group", "rank"]),
  };
}

function modelToState(block) {
  const out = { tag: block.tag };
  if (block.hasGroup || block.group) out.group = block.group;
  if (block.hasRank || block.group) out.rank = block.rank ?? 0;
  return Object.assign(out, clone(block.extra));
}

// Called when the trigger becomes the state-tag trigger: the parts a state tag needs, empty.
export function stateTagPrepare(model) {
  if (!model.state) model.state = stateToModel({});
  if (!model.left) model.left = [];
  if (!model.trigger.where) model.trigger.where = newGroup("all", [newRule()]);
  return model;
}

export function definitionToModel(definition) {
  const source = isObject(definition) ? definition : {};
  const trigger = isObject(source.trigger) ? source.trigger : {};
  const stateTag = trigger.event === STATE_TRIGGER;
  return {
    schema: source.schema,
    hasSchema: Object.prototype.hasOwnProperty.call(source, "schema"),
    trigger: {
      event: trigger.event ?? "",
      where: Object.prototype.hasOwnProperty.call(trigger, "where") ? conditionToNode(trigger.where) : null,
      extra: rest(trigger, ["event", "where"]),
    },
    hasTrigger: Object.prototype.hasOwnProperty.call(source, "trigger"),
    steps: (Array.isArray(source.steps) ? source.steps : []).map(stepToCard),
    hasSteps: Array.isArray(source.steps),
    // Only a state tag's `state` and `left` are edited; on any other trigger they stay in `extra` untouched.
    state: stateTag ? stateToModel(source.state) : null,
    hasState: stateTag && Object.prototype.hasOwnProperty.call(source, "state"),
    left: stateTag ? (Array.isArray(source.left) ? source.left : []).map(stepToCard) : null,
    hasLeft: stateTag && Array.isArray(source.left),
    extra: rest(source, stateTag ? ["schema", "trigger", "steps", "state", "left"] : ["schema", "trigger", "steps"]),
  };
}

export function modelToDefinition(model) {
  const definition = {};
  if (model.hasSchema || model.schema !== undefined) definition.schema = model.schema ?? 1;
  if (model.hasTrigger || model.trigger.event || model.trigger.where) {
    definition.trigger = { event: model.trigger.event };
    if (model.trigger.where) definition.trigger.where = nodeToCondition(model.trigger.where);
    Object.assign(definition.trigger, clone(model.trigger.extra));
  }
  if (isStateTag(model) && model.state) definition.state = modelToState(model.state);
  if (model.hasSteps || model.steps.length) definition.steps = model.steps.map(cardToStep);
  if (isStateTag(model) && model.left && (model.hasLeft || model.left.length)) definition.left = model.left.map(cardToStep);
  return Object.assign(definition, clone(model.extra));
}

export function emptyModel(event = "") {
  return definitionToModel({ schema: 1, trigger: { event }, steps: [] });
}

// --- Walking the cards ----------------------------------------------------------------------------

// Every list of cards with where it lives: [{list, path, parent, branch}], depth first, in display order.
export function cardLists(model) {
  const lists = [];
  function walk(list, path, parent, branch) {
    lists.push({ list, path, parent, branch });
    list.forEach((card, index) => {
      if (card.kind === "condition") {
        walk(card.then, `${path}[${index}].then`, card, "then");
        walk(card.else, `${path}[${index}].else`, card, "else");
      }
      if (card.kind === "split") {
        card.branches.forEach((branch, number) => {
          if (branch.steps) walk(branch.steps, `${path}[${index}].split[${number}].steps`, card, `split[${number}].steps`);
        });
      }
    });
  }
  walk(model.steps, "steps", null, null);
  if (model.left && isStateTag(model)) walk(model.left, "left", null, null);
  return lists;
}

export function findCard(model, uid) {
  for (const entry of cardLists(model)) {
    const index = entry.list.findIndex((card) => card.uid === uid);
    if (index >= 0) return { ...entry, index, card: entry.list[index] };
  }
  return null;
}

export function cardById(model, stepId) {
  for (const entry of cardLists(model)) {
    const card = entry.list.find((candidate) => candidate.id === stepId);
    if (card) return card;
  }
  return null;
}

export function allStepIds(model) {
  const ids = new Set();
  for (const entry of cardLists(model)) for (const card of entry.list) if (card.id) ids.add(card.id);
  return ids;
}

export function newStepId(model) {
  const ids = allStepIds(model);
  let number = ids.size + 1;
  while (ids.has(`s${number}`)) number += 1;
  return `s${number}`;
}

export function locatePath(model, path) {
  const parts = parsePath(path);
  if (parts[0] === "definition") parts.shift();
  if (parts[0] === "trigger") {
    if (parts[1] === "where" && model.trigger.where) {
      const found = conditionNodeAt(model.trigger.where, parts.slice(2));
      return { target: "trigger", conditionUid: found.node?.uid, rest: joinParts(found.rest) };
    }
    return { target: "trigger", rest: joinParts(parts.slice(1)) };
  }
  if (parts[0] === "state" && model.state) return { target: "state", rest: joinParts(parts.slice(1)) };
  const stepsKey = parts[0] === "left" && model.left ? "left" : "steps";
  if (parts[0] !== stepsKey) return { target: "settings", rest: joinParts(parts) };
  let list = stepsKey === "left" ? model.left : model.steps;
  let card = null;
  let index = 1;
  while (index < parts.length && typeof parts[index] === "number") {
    const next = list[parts[index]];
    if (!next) break;
    card = next;
    index += 1;
    const branch = parts[index];
    if (card.kind === "condition" && (branch === "then" || branch === "else") && typeof parts[index + 1] === "number") {
      list = card[branch];
      index += 1;
      continue;
    }
    const splitBranch = card.kind === "split" && branch === "split" ? card.branches[parts[index + 1]] : null;
    if (splitBranch?.steps && parts[index + 2] === "steps" && typeof parts[index + 3] === "number") {
      list = splitBranch.steps;
      index += 3;
      continue;
    }
    break;
  }
  if (!card) return { target: stepsKey, rest: joinParts(parts.slice(1)) };
  const remaining = parts.slice(index);
  if (card.kind === "condition" && remaining[0] === "if") {
    const found = conditionNodeAt(card.condition, remaining.slice(1));
    return { target: card.uid, conditionUid: found.node?.uid, rest: joinParts(found.rest) };
  }
  return { target: card.uid, rest: joinParts(remaining) };
}

// --- Editing --------------------------------------------------------------------------------------

export function insertCard(model, list, index, card) {
  if (!card.id) card.id = newStepId(model);
  card.hasId = true;
  list.splice(index, 0, card);
  return card;
}

export function removeCard(model, uid) {
  const found = findCard(model, uid);
  if (found) found.list.splice(found.index, 1);
  return found?.card ?? null;
}

export function moveCard(model, uid, delta) {
  const found = findCard(model, uid);
  if (!found) return false;
  const target = found.index + delta;
  if (target < 0 || target >= found.list.length) return false;
  const [card] = found.list.splice(found.index, 1);
  found.list.splice(target, 0, card);
  return true;
}

export function newActionCard(action, params = {}) {
  return { uid: nextUid("s"), kind: "action", id: undefined, action, params, hasParams: true, extra: {}, hasId: true };
}

export function newConditionCard(condition = null) {
  return {
    uid: nextUid("s"), kind: "condition", id: undefined,
    condition: condition ?? newGroup("all", [newRule()]),
    then: [], else: [], hasThen: true, hasElse: true, extra: {}, hasId: true,
  };
}

export function newWaitCard(wait = { days: 1 }) {
  return { uid: nextUid("s"), kind: "wait", id: undefined, wait, extra: {}, hasId: true };
}

export function newSplitBranch(name, percent) {
  return { uid: nextUid("b"), name, percent, hasName: true, hasPercent: true, steps: [], hasSteps: true, extra: {} };
}

export function newSplitCard() {
  return {
    uid: nextUid("s"), kind: "split", id: undefined,
    branches: [newSplitBranch("A", 50), newSplitBranch("B", 50)], extra: {}, hasId: true,
  };
}
