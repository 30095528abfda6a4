"""SaaS reconfiguration, thermal/power-aware request routing and emergency playbooks (issue 4).

Flow: prepared room (``tapas_opt.api.prepare``) + catalogue + events ──build_reconfig_instance──▶
ReconfigInstance ──solve_optimal | solve_greedy | solve_uniform_cap──▶ ReconfigPlan
──check_plan──▶ violations (must be empty) ──write_outputs──▶ configs.csv, routing.csv,
caps.csv, summary.json. See docs/reconfiguration.md.
"""
