// The Segments list counts the segments it has time for; this asks for the others' counts
// (SegmentCountView), a few at a time, when the list is shown and when filtering replaces it.
(function () {
    "use strict";

    const WAITING = "[data-clientdb-segment-count]";
    const AT_ONCE = 2;

    function fill(cell) {
        const url = cell.getAttribute("data-clientdb-segment-count");
        cell.removeAttribute("data-clientdb-segment-count");
        return fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
            .then((response) => (response.ok ? response.json() : {label: "–"}))
            .catch(() => ({label: "–"}))
            .then((answer) => {
                cell.textContent = answer.label;
                cell.removeAttribute("aria-busy");
            });
    }

    function fillAll() {
        const waiting = Array.from(document.querySelectorAll(WAITING));
        function next() {
            const cell = waiting.shift();
            return cell ? fill(cell).then(next) : Promise.resolve();
        }
        for (let i = 0; i < AT_ONCE; i += 1) {
            next();
        }
    }

    document.addEventListener("DOMContentLoaded", fillAll);
    document.addEventListener("w-swap:success", fillAll);
})();
