"""The report's sections, one module each, in page order.

Each module has ``build(base) -> Section``; :data:`SECTION_BUILDERS` lists them.
"""
