"""Stage 5: the report. Reads records only: records -> comparable cells (``collect``) -> rliable statistics
(``stats``) -> pandas tables (``tables``, ``reference``) and rliable figures (``plots``) -> pages (``html``);
the click command in ``command``."""
