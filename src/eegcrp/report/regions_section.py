def add_regions_section(report, ctx):
    pass
