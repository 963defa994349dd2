// The visual condition editor as a form widget (loyalty_site/lib/forms.py ConditionField): the same editor
// as the workflow builder's, over the field's JSON textarea. The textarea stays the submitted value; the
// "Advanced: edit as JSON" toggle shows it. Errors from the server (or from the live preview) are shown
// on the very input they concern; a preview URL, when given, shows how many customers match as you type.
import { api, errorList, h, readJsonScript } from "./dom.js";
import { conditionEditor, describeCondition } from "./editor.js";
import { conditionToNode, locateConditionPath, newGroup, newRule, nodeToCondition } from "./model.js";

const PREVIEW_DELAY_MS = 400;

function mount(container) {
  if (container.dataset.mounted) return;
  container.dataset.mounted = "1";
  const id = container.dataset.conditionWidget;
  const boot = readJsonScript(`${id}-condition-boot`);
  const textarea = document.getElementById(id);
  const host = document.getElementById(`${id}-editor`);
  const preview = document.getElementById(`${id}-preview`);
  const fields = new Map(boot.catalog.fields.map((field) => [field.name, field]));
  const operators = new Map(boot.catalog.operators.map((operator) => [operator.name, operator]));

  const state = { node: null, errors: [], advanced: false, jsonError: null, scopes: boot.scopes, previewTimer: null, previewSeq: 0 };

  function readTextarea() {
    const text = textarea.value.trim();
    if (!text || text === "null" || text === "{}") return { ok: true, node: null };
    try {
      return { ok: true, node: conditionToNode(JSON.parse(text)) };
    } catch {
      return { ok: false };
    }
  }

  function writeTextarea() {
    textarea.value = state.node ? JSON.stringify(nodeToCondition(state.node), null, 2) : "";
    textarea.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function setErrors(list) {
    state.errors = list.map((error) => {
      const found = state.node ? locateConditionPath(state.node, error.path || "") : { uid: null, rest: error.path || "" };
      return { ...error, uid: found.uid || null, rest: found.rest };
    });
  }

  function scopeFromForm() {
    const from = boot.scopes_from;
    if (!from) return boot.scopes;
    const input = document.getElementById(`id_${from.field}`);
    return (input && from.map[input.value]) || from.default || boot.scopes;
  }

  const ctx = {
    operator: (name) => operators.get(name) || null,
    field(name) {
      if (!name) return null;
      if (fields.has(name)) return fields.get(name);
      const parts = name.split(".");
      for (let cut = parts.length - 1; cut > 0; cut -= 1) {
        const wildcard = fields.get(`${parts.slice(0, cut).join(".")}.*`);
        if (wildcard) return wildcard;
      }
      return null;
    },
    fieldsInScope(scope) {
      if (scope) return boot.catalog.fields.filter((field) => field.scope === scope);
      const scopes = new Set(state.scopes);
      return boot.catalog.fields.filter((field) => scopes.has(field.scope) && (!boot.audience || field.audience !== false));
    },
    choicesFor(field) {
      if (!field) return [];
      if (field.choices?.length) return field.choices;
      return (boot.suggestions[field.picker] || []).map((value) => (typeof value === "object" ? value : { value, label: value }));
    },
    dynamicParams: () => [],
    changed(structural = false, focusId = null) {
      writeTextarea();
      if (structural) render(focusId);
      else summary();
      schedulePreview();
    },
    errorsFor(uid) {
      const mine = state.errors.filter((error) => error.uid === uid);
      return mine.length ? h("ul", { class: "wf-errors", role: "alert" }, mine.map((error) => h("li", {}, error.message))) : null;
    },
    traceFor: () => null,
  };

  function summary() {
    const element = container.querySelector(".cw-summary");
    if (element) element.textContent = state.node ? `Matches when ${describeCondition(state.node, ctx)}` : boot.empty_label;
  }

  function toolbar() {
    const toggle = h("button", {
      type: "button", class: "wf-link cw-advanced", "aria-controls": id, "aria-expanded": String(state.advanced),
      onclick: () => {
        if (state.advanced) {
          const parsed = readTextarea();
          if (!parsed.ok) {
            state.jsonError = "This is not valid JSON: fix it or clear the box to go back to the visual editor.";
            return render();
          }
          state.node = parsed.node;
          state.jsonError = null;
          state.errors = [];
        }
        state.advanced = !state.advanced;
        render();
        schedulePreview();
      },
    }, state.advanced ? "Back to the visual editor" : "Advanced: edit as JSON");
    return h("div", { class: "cw-toolbar" }, h("span", { class: "cw-summary" }), toggle);
  }

  function editor() {
    if (state.advanced) {
      const unplaced = state.errors;
      return h("div", {},
        state.jsonError ? h("ul", { class: "wf-errors", role: "alert" }, h("li", {}, state.jsonError)) : null,
        unplaced.length ? h("ul", { class: "wf-errors", role: "alert" }, unplaced.map((error) => h("li", {},
          error.path ? h("code", {}, error.path) : null, error.path ? " " : null, error.message))) : null);
    }
    if (!state.node) {
      return h("div", { class: "cw-empty" }, h("p", { class: "wf-muted" }, boot.empty_label),
        h("button", {
          type: "button", class: "button", id: `${id}-add`,
          onclick: () => { state.node = newGroup("all", [newRule()]); ctx.changed(true, `${state.node.children[0].uid}-field`); },
        }, "+ Add a condition"));
    }
    const rootErrors = state.errors.filter((error) => !error.uid);
    return h("div", {},
      rootErrors.length ? h("ul", { class: "wf-errors", role: "alert" }, rootErrors.map((error) => h("li", {}, error.message))) : null,
      conditionEditor(state.node, ctx, {
        onReplace: (replacement) => { state.node = replacement; ctx.changed(true); },
        onRemove: () => { state.node = null; ctx.changed(true, `${id}-add`); },
      }));
  }

  // Point at the very input an error names ("value", "op", "field"), not only at its rule.
  function markInvalidInputs() {
    for (const error of state.errors) {
      const scope = error.uid ? host.querySelector(`[data-uid="${error.uid}"]`) : null;
      if (!scope) continue;
      const rest = error.rest || "";
      const input = [...scope.querySelectorAll("[data-path]")].find((candidate) => {
        const path = candidate.dataset.path;
        return path && (rest === path || rest.startsWith(`${path}[`) || rest.startsWith(`${path}.`));
      });
      if (input) {
        input.classList.add("has-error");
        input.setAttribute("aria-invalid", "true");
      }
    }
  }

  function render(focusId = null) {
    const active = focusId || (host.contains(document.activeElement) ? document.activeElement.id : null);
    textarea.hidden = !state.advanced;
    host.replaceChildren(toolbar(), editor());
    summary();
    markInvalidInputs();
    if (active) document.getElementById(active)?.focus();
  }

  // --- Live preview (a segment's member count and a sample, as you type) ----------------------------
  function schedulePreview() {
    if (!boot.preview_url) return;
    clearTimeout(state.previewTimer);
    state.previewTimer = setTimeout(runPreview, PREVIEW_DELAY_MS);
  }

  async function runPreview() {
    const parsed = state.advanced ? readTextarea() : { ok: true, node: state.node };
    if (!parsed.ok) return;
    const seq = ++state.previewSeq;
    preview.hidden = false;
    preview.classList.add("is-loading");
    const response = await api("POST", boot.preview_url, { condition: parsed.node ? nodeToCondition(parsed.node) : null });
    if (seq !== state.previewSeq) return; // a newer preview is on its way
    preview.classList.remove("is-loading");
    if (!response.ok) {
      const errors = response.status === 400 ? errorList(response.body) : [{ path: "", message: response.body?.message || "The preview is not available." }];
      // Incomplete rules are normal while typing: say what is missing, on the input, without shouting.
      if (response.status === 400 && !state.advanced) {
        setErrors(errors);
        render();
      }
      preview.classList.add("is-error");
      preview.replaceChildren(h("span", {}, response.status === 400 ? "Finish the condition to see who matches." : errors[0].message));
      return;
    }
    if (state.errors.length && !state.advanced) {
      state.errors = [];
      render();
    }
    preview.classList.remove("is-error");
    const body = response.body;
    const sample = body.sample || [];
    preview.replaceChildren(
      h("span", { class: "cw-count", dataset: { count: String(body.count) } }, `${body.count.toLocaleString()} customer${body.count === 1 ? "" : "s"}`),
      h("span", {}, " match now."),
      sample.length ? h("ul", { class: "cw-sample", "aria-label": "Some of them" }, sample.map((customer) => h("li", {},
        customer.url ? h("a", { href: customer.url }, customer.label) : customer.label))) : null);
  }

  // --- Start ------------------------------------------------------------------------------------------
  const parsed = readTextarea();
  state.advanced = !parsed.ok; // a document the editor cannot read stays in the JSON box
  if (!parsed.ok) state.jsonError = "This is not valid JSON yet.";
  state.node = parsed.ok ? parsed.node : null;
  setErrors(boot.errors || []);
  state.scopes = scopeFromForm();
  if (boot.scopes_from) {
    document.getElementById(`id_${boot.scopes_from.field}`)?.addEventListener("change", () => {
      state.scopes = scopeFromForm();
      render();
    });
  }
  textarea.addEventListener("input", () => { if (state.advanced) schedulePreview(); });
  render();
  if (boot.preview_url) runPreview();
}

document.querySelectorAll("[data-condition-widget]").forEach(mount);
