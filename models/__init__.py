"""Front-ends (:mod:`models.functional`, :mod:`models.frontends`) and classifiers (:mod:`models.classifiers`)."""
