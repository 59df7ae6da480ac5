"""The script a site embeds with one tag: it renders the form, posts it as JSON with
`fetch`, and shows the success message, the field errors of a 422, or follows the redirect.

No framework and no other request: the form's public definition is inlined
(`__RELATA_FORM__`). Options on the script tag: `data-target` (a CSS selector; default:
right after the tag), `data-submit-label`, `data-error-message`, `data-no-style`."""

SCRIPT = r"""/* Relata web form — docs/integrations/forms.md */
(function () {
  "use strict";
  var FORM = __RELATA_FORM__;
  var UTM = __RELATA_UTM__;
  var script = document.currentScript;
  var opt = function (name, fallback) {
    var value = script && script.getAttribute("data-" + name);
    return value || fallback;
  };

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (attrs[key] !== null && attrs[key] !== undefined && attrs[key] !== false) {
        node.setAttribute(key, attrs[key] === true ? "" : String(attrs[key]));
      }
    });
    if (text) node.textContent = text;
    return node;
  }

  function newId() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return "s-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  // UTM parameters of the landing page, kept for the visit when the form is on another page.
  function utm() {
    var found = {};
    var params = new URLSearchParams(window.location.search);
    UTM.forEach(function (key) { if (params.get(key)) found[key] = params.get(key); });
    try {
      if (Object.keys(found).length) {
        window.sessionStorage.setItem("relata_utm", JSON.stringify(found));
      } else {
        found = JSON.parse(window.sessionStorage.getItem("relata_utm") || "{}");
      }
    } catch (e) { /* storage may be disabled */ }
    return found;
  }

  function addStyle() {
    if (opt("no-style") || document.getElementById("relata-form-style")) return;
    var style = el("style", {id: "relata-form-style"});
    style.textContent = ".relata-form{display:grid;gap:.75em;max-width:32em}" +
      ".relata-field label{display:block;font-weight:600;margin-bottom:.25em}" +
      ".relata-field input:not([type=checkbox]),.relata-field select,.relata-field textarea" +
      "{width:100%;box-sizing:border-box;padding:.4em}" +
      ".relata-error{color:#b00020;font-size:.9em;min-height:1em}" +
      ".relata-status{font-weight:600}";
    document.head.appendChild(style);
  }

  function control(field, id) {
    var common = {id: id, name: field.name, required: field.required,
                  "aria-describedby": id + "-error"};
    if (field.type === "textarea") {
      return el("textarea", Object.assign(common, {maxlength: field.max_length, rows: 4,
                                                  placeholder: field.placeholder}));
    }
    if (field.type === "select") {
      var select = el("select", common);
      select.appendChild(el("option", {value: ""}, field.placeholder || "—"));
      field.options.forEach(function (o) { select.appendChild(el("option", {value: o}, o)); });
      return select;
    }
    var types = {email: "email", phone: "tel", checkbox: "checkbox", text: "text"};
    var auto = {email: "email", phone: "tel"};
    return el("input", Object.assign(common, {
      type: types[field.type] || "text", maxlength: field.type === "checkbox" ? null :
        field.max_length, placeholder: field.placeholder,
      autocomplete: auto[field.type] || (/name/.test(field.name) ? "name" : null)}));
  }

  function render(target) {
    addStyle();
    var form = el("form", {"class": "relata-form", novalidate: true,
                           "data-relata-form": FORM.form_key});
    var inputs = {};
    var errors = {};
    FORM.fields.forEach(function (field) {
      var id = "relata-" + FORM.form_key + "-" + field.name;
      if (field.type === "hidden") {
        inputs[field.name] = el("input", {type: "hidden", name: field.name,
                                          value: field.value || ""});
        form.appendChild(inputs[field.name]);
        return;
      }
      var box = el("div", {"class": "relata-field", "data-field": field.name});
      var label = el("label", {"for": id}, field.label + (field.required ? " *" : ""));
      var input = control(field, id);
      if (field.type === "checkbox") { box.appendChild(input); box.appendChild(label); }
      else { box.appendChild(label); box.appendChild(input); }
      errors[field.name] = el("div", {"class": "relata-error", id: id + "-error",
                                      "aria-live": "polite"});
      box.appendChild(errors[field.name]);
      inputs[field.name] = input;
      form.appendChild(box);
    });
    // The honeypot: out of sight and out of the tab order; people leave it empty.
    var trap = el("div", {"aria-hidden": "true", style:
      "position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden"});
    var honeypot = el("input", {type: "text", name: FORM.honeypot_field, tabindex: "-1",
                                autocomplete: "off", value: ""});
    trap.appendChild(el("label", {}, "Leave this field empty"));
    trap.appendChild(honeypot);
    form.appendChild(trap);
    var button = el("button", {type: "submit"}, opt("submit-label", "Send"));
    var status = el("div", {"class": "relata-status", role: "status", "aria-live": "polite"});
    form.appendChild(button);
    form.appendChild(status);
    target.appendChild(form);

    var submissionId = newId();
    function showErrors(problem) {
      var general = [];
      (problem.errors || []).forEach(function (e) {
        var name = e.loc && e.loc[e.loc.length - 1];
        if (errors[name]) errors[name].textContent = e.msg;
        else general.push(e.msg);
      });
      status.textContent = general.join("; ") ||
        (problem.errors && problem.errors.length ? "" : problem.detail || "");
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      Object.keys(errors).forEach(function (k) { errors[k].textContent = ""; });
      status.textContent = "";
      button.disabled = true;
      var body = {};
      FORM.fields.forEach(function (field) {
        var input = inputs[field.name];
        body[field.name] = field.type === "checkbox" ? input.checked : input.value;
      });
      body[FORM.honeypot_field] = honeypot.value;
      var marks = utm();
      Object.keys(marks).forEach(function (k) { body[k] = marks[k]; });
      if (document.referrer) body.referrer = document.referrer;
      body.page_url = window.location.href;
      fetch(FORM.submit_url, {
        method: "POST", mode: "cors", credentials: "omit",
        headers: {"Content-Type": "application/json", "Idempotency-Key": submissionId},
        body: JSON.stringify(body)
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.ok) {
            submissionId = newId();
            if (data.redirect_url) { window.location.assign(data.redirect_url); return; }
            var done = el("div", {"class": "relata-success", role: "status"},
                          data.message || FORM.success_message);
            form.parentNode.replaceChild(done, form);
          } else if (response.status === 429) {
            var wait = response.headers.get("Retry-After");
            status.textContent = "Too many attempts; try again" +
              (wait ? " in " + wait + " s" : " later") + ".";
          } else {
            showErrors(data);
            if (!status.textContent && !(data.errors || []).length) {
              status.textContent = opt("error-message", "The form could not be sent.");
            }
          }
        });
      }).catch(function () {
        status.textContent = opt("error-message",
          "The form could not be sent. Check the connection and try again.");
      }).then(function () { button.disabled = false; });
    });
  }

  function start() {
    var selector = opt("target", null);
    var target = selector ? document.querySelector(selector) : null;
    if (!target) {
      target = document.createElement("div");
      if (script && script.parentNode) script.parentNode.insertBefore(target, script.nextSibling);
      else document.body.appendChild(target);
    }
    render(target);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
"""
