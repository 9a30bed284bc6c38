"""Pure DataFrame transforms, one module per layer.

input_ports -> staging -> intermediate -> output_ports, mirroring the dbt project
this product started from. Nothing here reads or writes data or touches a session.
"""
