// Wagtail's bulk-actions.js counts the selection in the words wagtailConfig holds for the
// footer's item type ("3 snippets selected"); this gives it the listing's own words
// ("3 customers selected"), rendered translated into the page's data-clientdb-bulk-action-strings.
(function () {
    "use strict";

    const strings = document.getElementById("clientdb-bulk-action-strings");
    const footer = document.querySelector("[data-bulk-action-footer]");
    if (strings && footer && window.wagtailConfig) {
        window.wagtailConfig.STRINGS.BULK_ACTIONS[footer.getAttribute("data-bulk-action-footer")] = JSON.parse(strings.textContent);
    }
})();
