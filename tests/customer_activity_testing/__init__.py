"""Helpers shared by the tests: builders of tiny tables, the CLI's build as tests call it,
outputs and how to inspect them, the reference implementation, plan and bundle checks,
a recording HTTP server. Named after the product so that it cannot shadow an installed
package."""
