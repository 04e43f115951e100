/* Keeps what a shopper is typing when an htmx answer replaces the field out of band.
 *
 * The catalog's filters come back with every result (hx-swap-oob), so the answer to one change (the
 * price "From", on leaving it) can arrive while the shopper types the next ("To"): htmx would put the
 * server's field, without what was typed since the request left, in its place. That field keeps its
 * text instead (htmx gives it the focus back, by its id), and on leaving it the change the server has
 * not seen is announced, so the results follow it as they would have. A field whose text the request
 * carried takes the server's version (its "100.00" for "100").
 *
 * Nothing else: a checkbox or a select changes on the spot (its request waits for the one under way:
 * hx-sync on the catalog form), and a page without JavaScript needs none of this.
 */
(function () {
  "use strict";
  var TYPED = /^(text|search|number|email|tel|url)$/;
  var sent = {}; // the focused field's text when the last request left: {id: text}

  function typedField(element) {
    return element && element.id && element.tagName === "INPUT" && TYPED.test(element.type);
  }

  document.addEventListener("htmx:beforeRequest", function () {
    var focused = document.activeElement;
    sent = {};
    if (typedField(focused)) sent[focused.id] = focused.value;
  });

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var typing = document.activeElement;
    var detail = event.detail;
    if (!typedField(typing) || !detail.target.contains(typing) || sent[typing.id] === typing.value) return;
    var incoming = detail.fragment.querySelector("#" + CSS.escape(typing.id));
    if (!incoming || incoming.value === typing.value) return;
    incoming.value = typing.value;
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
})();
