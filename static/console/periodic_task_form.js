// The periodic task form (django-celery-beat): shows the chosen crontab in words under
// the field. It was an inline script in the package's template; the CSP allows none.
'use strict';
{
    const $ = django.jQuery;
    const script = document.getElementById('periodic-task-overrides');
    const readableCrontabs = JSON.parse(document.getElementById('readable-crontabs').textContent);
    const originalHelp = script.dataset.crontabHelp;

    $('.field-crontab_translation').hide();
    $('.field-crontab').change(function() {
        const help = $('.field-crontab .help');
        const translation = readableCrontabs[$('#id_crontab').val()];
        help.text(originalHelp).append('<br>').append(document.createTextNode(`Translation: ${translation}`));
    });
}
