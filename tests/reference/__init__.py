"""Independent reference model of the warehouse rules (issue 12), its boundary-biased event
generator and the harness that compares a real dbt build with it, table by table."""
