// The customer listing names the dynamic groups it has time for; this asks for the others'
// names (GroupNamesView), once per page, when the listing is shown and when filtering replaces it.
(function () {
    "use strict";

    const WAITING = "[data-clientdb-group-names]";

    function fillAll() {
        const cells = Array.from(document.querySelectorAll(WAITING));
        const byUrl = new Map();
        cells.forEach((cell) => {
            const url = cell.getAttribute("data-clientdb-group-names");
            cell.removeAttribute("data-clientdb-group-names");
            byUrl.set(url, (byUrl.get(url) || []).concat([cell]));
        });
        byUrl.forEach((waiting, url) => {
            fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
                .then((response) => (response.ok ? response.json() : {}))
                .catch(() => ({}))
                .then((answer) => {
                    waiting.forEach((cell) => {
                        const names = answer.names && answer.names[cell.getAttribute("data-clientdb-for")];
                        if (names === undefined) {
                            cell.textContent = cell.getAttribute("data-clientdb-separator") + "–";
                        } else {
                            cell.textContent = names.length ? cell.getAttribute("data-clientdb-separator") + names.join(", ") : "";
                        }
                        cell.removeAttribute("aria-busy");
                    });
                });
        });
    }

    document.addEventListener("DOMContentLoaded", fillAll);
    document.addEventListener("w-swap:success", fillAll);
})();
