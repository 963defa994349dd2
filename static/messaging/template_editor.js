// Live preview of a message template (templates/messaging/template_edit.html): after a pause in typing, the
// editor's texts are rendered for the chosen customer by the server (the same code that sends) into the
// preview frame, and the subject and any errors are shown above it. Without this script, "Preview" does it.
(function () {
  "use strict";
  const form = document.getElementById("msg-editor");
  if (!form) return;
  const previewButton = form.querySelector("[data-testid=preview]");
  const customer = form.querySelector("[name=customer]");
  const subjectLine = document.querySelector("[data-testid=preview-subject]");
  const errorList = document.querySelector("[data-testid=preview-errors]");
  if (!previewButton || !customer) return;
  let timer = null;

  function showErrors(errors) {
    errorList.replaceChildren();
    for (const error of errors) {
      const item = document.createElement("li");
      item.textContent = (error.path ? error.path + ": " : "") + error.message;
      errorList.appendChild(item);
    }
    errorList.hidden = errors.length === 0;
  }

  async function refresh() {
    if (!customer.value.trim()) return;
    form.requestSubmit(previewButton);
    const data = new FormData(form);
    data.set("format", "json");
    try {
      const response = await fetch(form.dataset.previewUrl, { method: "POST", body: data, credentials: "same-origin" });
      const answer = await response.json();
      showErrors(answer.errors || []);
      subjectLine.textContent = answer.subject ? "Subject: " + answer.subject + " · " + answer.locale : "";
    } catch (error) {
      showErrors([{ path: "", message: "The preview could not be loaded." }]);
    }
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 400);
  }

  previewButton.addEventListener("click", function () { window.setTimeout(refresh, 0); });
  for (const name of ["subject", "body", "customer"]) {
    const field = form.querySelector("[name=" + name + "]");
    if (field) field.addEventListener("input", schedule);
  }
  if (customer.value.trim()) refresh();
})();
