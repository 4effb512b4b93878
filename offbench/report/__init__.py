"""The report. Reads records only: records -> comparable cells (``collect``; what is left out: ``issues``) -> rliable
statistics (``stats``) -> pandas tables (``tables``, ``reference``; rendered by ``render``) and rliable figures
(``plots``) -> pages (``html``); the click command in ``command``."""
