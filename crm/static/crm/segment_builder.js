/*
 * Nextstep condition builder: nested "all / any / none of" groups of conditions.
 *
 * The one widget for every condition in Nextstep: segments, scoring rules, triggers,
 * goals, exits, audiences and branches (crm/conditions, docs/segments.md "The
 * condition language"). It edits the condition JSON kept in a textarea (the field
 * the form submits), drawing the controls from the catalog the page embeds as JSON
 * (crm/segments/catalog.py via crm.conditions.widget.builder_config). Every choice
 * and value is validated again on the server; this file only helps people build.
 *
 * API
 * ---
 * 1. Declarative (what Django's ConditionBuilderWidget renders):
 *
 *      <textarea name="condition" data-condition-builder="contact"
 *                data-condition-config="condition-config">{"match": "all", ...}</textarea>
 *      <script type="application/json" id="condition-config">{"catalog": ..., "options": ...}</script>
 *
 *    `data-condition-builder` is the mode: "contact" (facts about a person: segments,
 *    audiences, branches, fit rules) or "activity" (the activity being matched:
 *    triggers' conditions, goals, exits, engagement rules). The mode picks the
 *    catalog's fields; the config element holds {catalog, options} for that mode
 *    (crm.conditions.widget.builder_config(mode=...)). Every such textarea is
 *    turned into a builder when the page loads; the textarea moves into a
 *    "View or edit as JSON" disclosure below the builder.
 *
 * 2. Programmatic (textareas added later, e.g. a sequence builder's step form):
 *
 *      const builder = window.NextstepConditions.attach(textarea, config);
 *
 *    `config` is optional when the textarea carries data-condition-config.
 *    Attaching the same textarea twice returns the first builder.
 *    builder.definition is the current tree (null while the JSON is broken);
 *    builder.setDefinition(tree) replaces it.
 *
 * After every edit the textarea's value is the new JSON (pretty-printed) and the
 * textarea fires a "conditions:change" CustomEvent whose detail is
 * {definition, mode}. An empty textarea starts as {"match": "all", "conditions": []},
 * and an empty group means "no conditions" wherever conditions are optional.
 *
 * The segment page keeps its own markup (#segment-builder with a live preview);
 * the preview runs only when config.preview_url is set.
 */
(function () {
  "use strict";

  // --- Small DOM helpers ------------------------------------------------------------------

  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    Object.entries(attributes || {}).forEach(function ([name, value]) {
      if (value === undefined || value === null || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child) node.append(child);
    });
    return node;
  }

  function selectOf(options, selected, attributes) {
    const select = el("select", attributes);
    options.forEach(function ([value, label]) {
      const option = el("option", { value: value, text: label });
      option.selected = value === selected;
      select.append(option);
    });
    return select;
  }

  function numberOrNull(text) {
    if (text.trim() === "") return null;
    const number = Number(text);
    return Number.isFinite(number) ? number : text;
  }

  function button(label, className, onclick) {
    return el("button", { type: "button", class: "button " + className, text: label, onclick: onclick });
  }

  // --- Default values ---------------------------------------------------------------------

  const EMPTY_VALUES = {
    none: undefined,
    text: "",
    texts: [],
    choices: [],
    choice: "",
    number: null,
    range: [null, null],
    date: "",
    days: null,
  };

  function newCondition(field, operator) {
    const condition = { field: field.key, operator: operator.key };
    applyOperatorDefaults(condition, operator);
    field.params.forEach(function (name) {
      if (name === "key" || name === "topic" || name === "kind") condition[name] = "";
      if (name === "where") condition.where = [];
    });
    return condition;
  }

  function applyOperatorDefaults(condition, operator) {
    delete condition.value;
    delete condition.count;
    delete condition.days;
    if (operator.kind === "count_in_days") {
      condition.count = 1;
      condition.days = null;
    } else if (operator.kind === "in_days") {
      condition.days = null;
    } else if (operator.kind !== "none") {
      const empty = EMPTY_VALUES[operator.kind];
      condition.value = Array.isArray(empty) ? empty.slice() : empty;
    }
  }

  // --- The builder ------------------------------------------------------------------------

  class Builder {
    constructor(root, textarea, config) {
      this.root = root;
      this.textarea = textarea;
      this.config = config;
      this.catalog = config.catalog;
      this.options = config.options;
      this.fields = {};
      this.catalog.fields.forEach((field) => {
        this.fields[field.key] = field;
      });
      this.mode = config.mode || (config.catalog && config.catalog.mode) || "contact";
      this.subject = this.catalog.subject || "People";
      this.tree = root.querySelector(".segment-builder-tree");
      this.jsonError = root.querySelector(".segment-builder-json-error");
      this.definition = null;
    }

    start() {
      this.loadJson({ quiet: true });
      this.root.querySelector(".segment-builder-apply-json").addEventListener("click", () => {
        this.loadJson({ quiet: false });
      });
      this.textarea.addEventListener("change", () => this.loadJson({ quiet: false }));
      const previewButton = this.config.preview_url && document.getElementById("segment-preview-button");
      if (previewButton) {
        previewButton.addEventListener("click", () => this.preview());
        document.getElementById("segment-preview-topic").addEventListener("change", () => this.preview());
        // After a refused save, mark each faulty condition in the tree as well.
        if (this.definition && document.querySelector(".errornote")) this.preview();
      }
    }

    loadJson({ quiet }) {
      let parsed;
      try {
        const text = this.textarea.value.trim();
        parsed = text ? JSON.parse(text) : { match: "all", conditions: [] };
      } catch (error) {
        return this.brokenJson("This is not valid JSON: " + error.message);
      }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed) || !("match" in parsed)) {
        return this.brokenJson('The JSON must be a group such as {"match": "all", "conditions": []}.');
      }
      this.definition = parsed;
      this.jsonError.textContent = "";
      this.render();
      if (!quiet) this.clearProblems();
    }

    brokenJson(message) {
      this.definition = null;
      this.jsonError.textContent = message;
      this.root.querySelector(".segment-builder-json").open = true;
      this.tree.replaceChildren(el("p", { class: "errornote", text: message + " Fix the JSON below, then apply it." }));
    }

    // Structural changes re-draw the tree; typing in a value only rewrites the JSON.
    changed({ redraw }) {
      this.textarea.value = JSON.stringify(this.definition, null, 2);
      if (redraw) this.render();
      this.textarea.dispatchEvent(new CustomEvent("conditions:change", {
        bubbles: true,
        detail: { definition: this.definition, mode: this.mode },
      }));
    }

    setDefinition(definition) {
      this.textarea.value = JSON.stringify(definition, null, 2);
      this.loadJson({ quiet: false });
    }

    render() {
      this.tree.replaceChildren(this.group(this.definition, "", 1, null));
    }

    group(group, position, depth, parent) {
      const node = el("div", { class: "sb-group", "data-position": position, "data-depth": depth });
      const match = selectOf(
        Object.entries(this.catalog.groups),
        group.match,
        { class: "sb-match", "aria-label": (position ? "Group " + position : "The " + (this.catalog.noun || "segment")) + " matches" }
      );
      match.addEventListener("change", () => {
        group.match = match.value;
        this.changed({ redraw: false });
      });
      const head = el("div", { class: "sb-group-head" }, [
        el("span", { class: "sb-number", text: position ? position : "" }),
        el("span", { text: position ? "Group: " + this.subject.toLowerCase() + " matching " : this.subject + " matching " }),
        match,
        el("span", { text: " these conditions" }),
      ]);
      if (parent) {
        head.append(button("Remove group", "sb-remove", () => {
          parent.conditions.splice(parent.conditions.indexOf(group), 1);
          this.changed({ redraw: true });
        }));
      }
      const list = el("ol", { class: "sb-conditions" });
      (group.conditions || []).forEach((child, index) => {
        const childPosition = position ? position + "." + (index + 1) : String(index + 1);
        const item = child && typeof child === "object" && "match" in child
          ? this.group(child, childPosition, depth + 1, group)
          : this.condition(child || {}, childPosition, group);
        list.append(el("li", {}, [item]));
      });
      const actions = el("div", { class: "sb-group-actions" }, [
        button("+ Add condition", "sb-add-condition", () => {
          group.conditions = group.conditions || [];
          group.conditions.push({ field: "" });
          this.changed({ redraw: true });
        }),
      ]);
      if (depth < this.catalog.limits.depth) {
        actions.append(button("+ Add group", "sb-add-group", () => {
          group.conditions = group.conditions || [];
          group.conditions.push({ match: "any", conditions: [{ field: "" }] });
          this.changed({ redraw: true });
        }));
      }
      node.append(head, list, actions, el("div", { class: "sb-problems", role: "alert" }));
      return node;
    }

    condition(condition, position, parent) {
      const node = el("div", { class: "sb-condition", "data-position": position });
      const field = this.fields[condition.field];
      node.append(el("span", { class: "sb-number", text: position }), this.fieldSelect(condition, position));
      if (field) {
        node.append(...this.params(condition, field, position));
        const operator = this.operatorOf(field, condition.operator);
        node.append(this.operatorSelect(condition, field, position));
        if (operator) node.append(this.valueInput(condition, field, operator, position));
        if (field.key === "activity") node.append(this.whereList(condition, position));
        if (field.help) node.append(el("span", { class: "help sb-help", text: field.help }));
      }
      node.append(
        button("Remove", "sb-remove", () => {
          parent.conditions.splice(parent.conditions.indexOf(condition), 1);
          this.changed({ redraw: true });
        }),
        el("div", { class: "sb-problems", role: "alert" })
      );
      return node;
    }

    operatorOf(field, key) {
      return field.operators.find((operator) => operator.key === key);
    }

    fieldSelect(condition, position) {
      const select = el("select", { class: "sb-field", "aria-label": "Condition " + position + ": filter on" });
      select.append(el("option", { value: "", text: "Choose what to filter on…" }));
      const groups = {};
      this.catalog.fields.forEach((field) => {
        if (!groups[field.group]) {
          groups[field.group] = el("optgroup", { label: field.group });
          select.append(groups[field.group]);
        }
        const option = el("option", { value: field.key, text: field.label });
        option.selected = field.key === condition.field;
        groups[field.group].append(option);
      });
      select.addEventListener("change", () => {
        const field = this.fields[select.value];
        Object.keys(condition).forEach((name) => delete condition[name]);
        if (field) Object.assign(condition, newCondition(field, field.operators[0]));
        else condition.field = "";
        this.changed({ redraw: true });
      });
      return select;
    }

    operatorSelect(condition, field, position) {
      const select = selectOf(
        field.operators.map((operator) => [operator.key, operator.label]),
        condition.operator,
        { class: "sb-operator", "aria-label": "Condition " + position + ": comparison" }
      );
      if (!this.operatorOf(field, condition.operator)) {
        select.prepend(el("option", { value: "", text: "Choose how to compare…", selected: true }));
      }
      select.addEventListener("change", () => {
        const before = this.operatorOf(field, condition.operator);
        const operator = this.operatorOf(field, select.value);
        condition.operator = select.value;
        if (operator && (!before || before.kind !== operator.kind)) applyOperatorDefaults(condition, operator);
        this.changed({ redraw: true });
      });
      return select;
    }

    params(condition, field, position) {
      const controls = [];
      if (field.params.includes("key")) {
        controls.push(this.textInput(condition, "key", "property name", "Condition " + position + ": property name"));
      }
      if (field.params.includes("topic")) {
        const select = selectOf(
          [["", "Choose a topic…"], ...this.options.topics],
          condition.topic,
          { class: "sb-topic", "aria-label": "Condition " + position + ": topic" }
        );
        select.addEventListener("change", () => {
          condition.topic = select.value;
          this.changed({ redraw: false });
        });
        controls.push(select);
      }
      if (field.params.includes("kind")) {
        const listId = "sb-kinds-" + position.replace(/\./g, "-");
        const input = this.textInput(condition, "kind", "e.g. page_viewed", "Condition " + position + ": activity");
        input.setAttribute("list", listId);
        const datalist = el("datalist", { id: listId });
        this.options.activity_kinds.forEach(([value, label]) => datalist.append(el("option", { value: value, text: label })));
        controls.push(input, datalist);
      }
      return controls;
    }

    textInput(target, name, placeholder, label) {
      const input = el("input", { type: "text", class: "sb-" + name, placeholder: placeholder, "aria-label": label });
      input.value = target[name] || "";
      input.addEventListener("input", () => {
        target[name] = input.value;
        this.changed({ redraw: false });
      });
      return input;
    }

    numberInput(onvalue, value, attributes) {
      const input = el("input", Object.assign({ type: "number", step: "any" }, attributes));
      input.value = value === null || value === undefined ? "" : value;
      input.addEventListener("input", () => {
        onvalue(numberOrNull(input.value));
        this.changed({ redraw: false });
      });
      return input;
    }

    valueInput(target, field, operator, position) {
      const label = "Condition " + position + ": value";
      const wrapper = el("span", { class: "sb-value", "data-kind": operator.kind });
      const set = (value) => {
        target.value = value;
      };
      switch (operator.kind) {
        case "none":
          break;
        case "text":
          wrapper.append(this.textInput(target, "value", "value", label));
          break;
        case "texts":
          wrapper.append(this.listInput(target, field, label));
          break;
        case "choices":
          wrapper.append(this.checkboxes(target, field, label));
          break;
        case "choice": {
          const select = selectOf(
            [["", "Choose…"], ...(this.options[field.options] || [])],
            target.value,
            { class: "sb-choice", "aria-label": label }
          );
          select.addEventListener("change", () => {
            target.value = select.value;
            this.changed({ redraw: false });
          });
          wrapper.append(select);
          break;
        }
        case "number":
          wrapper.append(this.numberInput(set, target.value, { class: "sb-number-value", "aria-label": label }));
          break;
        case "range": {
          const range = Array.isArray(target.value) ? target.value : [null, null];
          target.value = range;
          wrapper.append(
            this.numberInput((value) => { range[0] = value; }, range[0], { class: "sb-range-low", "aria-label": label + " (lowest)" }),
            el("span", { text: " and " }),
            this.numberInput((value) => { range[1] = value; }, range[1], { class: "sb-range-high", "aria-label": label + " (highest)" })
          );
          break;
        }
        case "date": {
          const input = el("input", { type: "date", class: "sb-date", "aria-label": label });
          input.value = target.value || "";
          input.addEventListener("input", () => {
            target.value = input.value;
            this.changed({ redraw: false });
          });
          wrapper.append(input);
          break;
        }
        case "days":
          wrapper.append(this.numberInput(set, target.value, { class: "sb-days", min: 1, step: 1, "aria-label": label + " (days)" }), el("span", { text: " days" }));
          break;
        case "count_in_days":
          wrapper.append(
            this.numberInput((value) => { target.count = value; }, target.count, { class: "sb-count", min: 1, step: 1, "aria-label": "Condition " + position + ": times" }),
            el("span", { text: " times in the last " }),
            this.daysInput(target, position),
            el("span", { text: " days (empty: ever)" })
          );
          break;
        case "in_days":
          wrapper.append(el("span", { text: " in the last " }), this.daysInput(target, position), el("span", { text: " days (empty: ever)" }));
          break;
        default:
          wrapper.append(el("span", { class: "errornote", text: "Unsupported value." }));
      }
      return wrapper;
    }

    daysInput(target, position) {
      return this.numberInput(
        (value) => { target.days = value; },
        target.days,
        { class: "sb-days", min: 1, step: 1, "aria-label": "Condition " + position + ": days" }
      );
    }

    listInput(target, field, label) {
      const input = el("input", { type: "text", class: "sb-texts", placeholder: "separate values with commas", "aria-label": label });
      input.value = Array.isArray(target.value) ? target.value.join(", ") : "";
      input.addEventListener("input", () => {
        target.value = input.value.split(",").map((part) => part.trim()).filter(Boolean);
        this.changed({ redraw: false });
      });
      const suggestions = this.options[field.options] || [];
      if (!suggestions.length) return input;
      const datalist = el("datalist", { id: "sb-list-" + field.key });
      suggestions.forEach(([value]) => datalist.append(el("option", { value: value })));
      input.setAttribute("list", datalist.id);
      return el("span", {}, [input, datalist]);
    }

    checkboxes(target, field, label) {
      const chosen = new Set(Array.isArray(target.value) ? target.value : []);
      const box = el("span", { class: "sb-choices", role: "group", "aria-label": label });
      (this.options[field.options] || []).forEach(([value, text]) => {
        const checkbox = el("input", { type: "checkbox", value: value });
        checkbox.checked = chosen.has(value);
        checkbox.addEventListener("change", () => {
          if (checkbox.checked) chosen.add(value);
          else chosen.delete(value);
          target.value = (this.options[field.options] || []).map(([key]) => key).filter((key) => chosen.has(key));
          this.changed({ redraw: false });
        });
        box.append(el("label", { class: "sb-choice-option" }, [checkbox, document.createTextNode(" " + (text || "(unknown)"))]));
      });
      return box;
    }

    whereList(condition, position) {
      condition.where = Array.isArray(condition.where) ? condition.where : [];
      const list = el("div", { class: "sb-where" });
      condition.where.forEach((where, index) => {
        const wherePosition = position + " where " + (index + 1);
        const operators = this.catalog.where_operators;
        const operator = operators.find((item) => item.key === where.operator);
        const select = selectOf(operators.map((item) => [item.key, item.label]), where.operator, {
          class: "sb-where-operator",
          "aria-label": "Condition " + wherePosition + ": comparison",
        });
        select.addEventListener("change", () => {
          const chosen = operators.find((item) => item.key === select.value);
          where.operator = select.value;
          applyOperatorDefaults(where, chosen);
          this.changed({ redraw: true });
        });
        const row = el("div", { class: "sb-where-row" }, [
          el("span", { text: "where property " }),
          this.textInput(where, "key", "property name", "Condition " + wherePosition + ": property name"),
          select,
        ]);
        if (operator) row.append(this.valueInput(where, { key: "where", options: "" }, operator, wherePosition));
        row.append(button("Remove", "sb-remove", () => {
          condition.where.splice(index, 1);
          this.changed({ redraw: true });
        }));
        list.append(row);
      });
      list.append(button("+ Where property…", "sb-add-where", () => {
        condition.where.push({ key: "", operator: "equals", value: "" });
        this.changed({ redraw: true });
      }));
      return list;
    }

    // --- Preview and problems -------------------------------------------------------------

    clearProblems() {
      this.root.querySelectorAll(".sb-problems").forEach((node) => node.replaceChildren());
      this.root.querySelectorAll(".sb-invalid").forEach((node) => node.classList.remove("sb-invalid"));
    }

    showProblems(problems) {
      this.clearProblems();
      problems.forEach((problem) => {
        const target = this.tree.querySelector('[data-position="' + (problem.position || "") + '"]');
        if (!target) return;
        target.classList.add("sb-invalid");
        target.querySelector(".sb-problems").append(el("p", { class: "sb-problem", text: problem.message }));
      });
    }

    async preview() {
      const result = document.getElementById("segment-preview-result");
      if (!this.definition) {
        result.replaceChildren(el("p", { class: "errornote", text: "Fix the JSON first: the preview needs a valid definition." }));
        return;
      }
      result.replaceChildren(el("p", { text: "Counting…" }));
      const csrf = document.querySelector("[name=csrfmiddlewaretoken]");
      let data;
      try {
        const response = await fetch(this.config.preview_url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
          body: JSON.stringify({
            definition: this.definition,
            segment_key: this.config.segment_key,
            topic: document.getElementById("segment-preview-topic").value,
          }),
        });
        data = await response.json();
      } catch (error) {
        result.replaceChildren(el("p", { class: "errornote", text: "The preview failed: " + error.message }));
        return;
      }
      this.showResult(result, data);
    }

    showResult(result, data) {
      if (data.problems && data.problems.length) {
        this.showProblems(data.problems);
        const list = el("ul", { class: "errorlist sb-problem-list" });
        data.problems.forEach((problem) => list.append(el("li", { text: problem.text })));
        result.replaceChildren(el("p", { class: "errornote", text: "Fix these before the segment can be counted or saved:" }), list);
        return;
      }
      this.clearProblems();
      if (data.count === null || data.count === undefined) {
        // Neither the exact count nor a sample fitted in the preview's time.
        result.replaceChildren(el("p", { class: "sb-summary", id: "segment-preview-count", text:
          "Too slow to count in a preview. Save the segment: it is counted in full in the background and its page shows the member count." }));
        return;
      }
      const about = data.estimated ? "about " : "";
      const summary = el("p", { class: "sb-summary" }, [
        document.createTextNode(data.estimated ? "About " : ""),
        el("strong", { id: "segment-preview-count", text: data.count.toLocaleString() }),
        document.createTextNode(data.count === 1 ? " contact matches" : " contacts match"),
      ]);
      if (data.sendable_count !== null && data.sendable_count !== undefined) {
        summary.append(
          document.createTextNode(" · " + about),
          el("strong", { id: "segment-preview-sendable", text: data.sendable_count.toLocaleString() }),
          document.createTextNode(" sendable for " + data.topic)
        );
      }
      summary.append(document.createTextNode(" · the query took " + data.milliseconds + " ms"));
      const parts = [summary];
      if (data.estimated) {
        parts.push(el("p", { class: "help", id: "segment-preview-estimated", text:
          "Estimated from a " + data.sampled_percent + "% sample of contacts: counting all of them takes longer than a preview may. Saving the segment counts it exactly." }));
      }
      parts.push(this.sampleTable(data.sample));
      result.replaceChildren(...parts);
    }

    sampleTable(sample) {
      if (!sample.length) return el("p", { text: "Nobody matches yet." });
      const body = el("tbody");
      sample.forEach((contact) => {
        body.append(el("tr", {}, [
          el("td", {}, [el("a", { href: contact.url, text: contact.email })]),
          el("td", { text: contact.name }),
          el("td", { text: contact.lifecycle_stage }),
          el("td", { text: String(contact.lead_score) }),
        ]));
      });
      return el("table", { class: "sb-sample" }, [
        el("caption", { text: "A sample of " + sample.length + " (newest first)" }),
        el("thead", {}, [el("tr", {}, ["Email", "Name", "Stage", "Lead score"].map((text) => el("th", { text: text })))]),
        body,
      ]);
    }
  }

  // --- Entry points -----------------------------------------------------------------------

  const builders = new WeakMap();

  function configFor(textarea) {
    const id = textarea.dataset.conditionConfig;
    const script = id && document.getElementById(id);
    if (!script) throw new Error("Condition builder: no config element #" + id);
    return JSON.parse(script.textContent);
  }

  // Draw the builder's frame around a bare textarea: tree above, JSON below.
  function frame(textarea) {
    const root = el("div", { class: "segment-builder condition-builder", "data-mode": textarea.dataset.conditionBuilder });
    const error = el("span", { class: "segment-builder-json-error", role: "alert" });
    const details = el("details", { class: "segment-builder-json" }, [
      el("summary", { text: "View or edit as JSON" }),
    ]);
    textarea.parentNode.insertBefore(root, textarea);
    details.append(textarea, el("p", {}, [button("Apply JSON to the builder", "segment-builder-apply-json", null), document.createTextNode(" "), error]));
    root.append(el("div", { class: "segment-builder-tree" }), details);
    return root;
  }

  function attach(textarea, config) {
    if (builders.has(textarea)) return builders.get(textarea);
    const settings = Object.assign({}, config || configFor(textarea));
    settings.mode = settings.mode || textarea.dataset.conditionBuilder || "contact";
    const root = textarea.closest(".segment-builder") || frame(textarea);
    const builder = new Builder(root, textarea, settings);
    builders.set(textarea, builder);
    builder.start();
    return builder;
  }

  function init() {
    const root = document.getElementById("segment-builder");
    if (root) {
      const config = JSON.parse(document.getElementById("segment-builder-config").textContent);
      attach(document.getElementById(root.dataset.textarea), config);
    }
    // Inline formsets keep an empty template form ("__prefix__"): it is cloned, not edited.
    document.querySelectorAll("textarea[data-condition-builder]").forEach(function (textarea) {
      if (!textarea.name || textarea.name.indexOf("__prefix__") === -1) attach(textarea);
    });
  }

  window.NextstepConditions = { attach: attach };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
