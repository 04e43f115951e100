/* Refuses a file over its field's size limit as soon as it is chosen, before the form is sent.
 *
 * The server refuses a request body over the limit (413) before reading it, so it cannot say which form
 * it came from: without this, an admin who picked a 7 MB photo lost the description typed beside it to
 * a separate error page. A file field with ``data-max-bytes`` (its limit) and ``data-too-large`` (the
 * server's own message) is marked invalid while a chosen file is larger, so the browser keeps the form
 * and shows that message on the field. Without JavaScript the server's 413 page still says it.
 */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (!(field instanceof HTMLInputElement) || field.type !== "file" || !field.dataset.maxBytes) return;
    var limit = Number(field.dataset.maxBytes);
    var tooLarge = Array.prototype.some.call(field.files || [], function (file) {
      return file.size > limit;
    });
    field.setCustomValidity(tooLarge ? field.dataset.tooLarge || "The file is too large." : "");
    if (tooLarge) field.reportValidity();
  });
})();
