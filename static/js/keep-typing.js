/* Keeps what a shopper typed when an htmx answer replaces the field out of band.
 *
 * The catalog's filters come back with every result (hx-swap-oob), so the answer to one change (the
 * price "From", on leaving it) can arrive after the shopper typed the next ("To"), while typing it or
 * just after: htmx would put the server's field, without what was typed since the request left, in its
 * place (and a request queued behind it would then read the emptied field). A field whose text changed
 * since the request left keeps it instead; the one being typed in gets the focus back (htmx does that,
 * by its id) and, on leaving it, announces the change the server has not seen, so the results follow it
 * as they would have. A field whose text the request carried takes the server's version ("100.00").
 *
 * Nothing else: a checkbox or a select changes on the spot (its request waits for the one under way:
 * hx-sync on the catalog form), and a page without JavaScript needs none of this. A number field's
 * half-typed text that is not a number yet ("1e") has no value to keep.
 */
(function () {
  "use strict";
  var TYPED = "input[id]:is([type=text], [type=search], [type=number], [type=email], [type=tel], [type=url])";
  var sent = {}; // every typed field's text when the last request left: {id: text}

  document.addEventListener("htmx:beforeRequest", function () {
    sent = {};
    document.querySelectorAll(TYPED).forEach(function (field) {
      sent[field.id] = field.value;
    });
  });

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var detail = event.detail;
    var fields = detail.target.matches(TYPED) ? [detail.target] : detail.target.querySelectorAll(TYPED);
    fields.forEach(function (field) {
      if (!(field.id in sent) || sent[field.id] === field.value) return; // the server saw this text
      var incoming = detail.fragment.querySelector("#" + CSS.escape(field.id));
      if (!incoming || incoming.value === field.value) return;
      incoming.value = field.value;
      if (field !== document.activeElement) return; // left already: its change is on its way
      incoming.addEventListener(
        "blur",
        function () {
          if (incoming.isConnected && incoming.value !== incoming.defaultValue) {
            incoming.dispatchEvent(new Event("change", { bubbles: true }));
          }
        },
        { once: true }
      );
    });
  });
})();
