// A <select data-submit-on-change> submits its form when changed (the worklist's "Whose
// list"): a file rather than an onchange attribute, which the CSP does not run.
'use strict';
document.addEventListener('change', (event) => {
    if (event.target.matches('[data-submit-on-change]') && event.target.form) {
        event.target.form.submit();
    }
});
