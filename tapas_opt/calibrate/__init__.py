"""Fit the four physical models of TAPAS.md section 2 to a room's own telemetry.

* :mod:`~tapas_opt.calibrate.regress`: the statsmodels regressions (GPU power vs load, GPU
  temperature vs inlet and GPU power, server power and airflow vs load, inlet vs outside
  temperature and room load), each with confidence intervals and MAE;
* :mod:`~tapas_opt.calibrate.telemetry`: the calibration columns of an inventory, checked;
* :mod:`~tapas_opt.calibrate.physics_file`: ``physics.yaml``, where ``tapas-opt fit`` writes the
  fitted coefficients and where the inventory loader reads them back;
* :mod:`~tapas_opt.calibrate.gpu_temp`: the GPU-temperature model on telemetry without inlet
  sensors (the Cornell servers), with an inlet proxy estimated from the GPU's own history.

The equations themselves stay in :mod:`tapas_opt.physics`; this package only estimates their
coefficients.
"""
