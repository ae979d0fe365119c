"""Report hooks: ``config.report = 'NAME'`` calls ``train.reports.NAME.report(workdir, runs, config) -> str``."""
