def add_sources_section(report, ctx):
    pass
