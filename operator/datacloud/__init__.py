"""datacloud: the operator of Fujian's provincial public-data compute infrastructure."""

GROUP = "datacloud.fujian.gov.cn"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
# Any new value of this annotation asks for a run now: a census's (`datacloud census run NAME`), a
# DRReplica's full syncs of its Scheduled targets (`datacloud dr sync-now NAME`).
RUN_NOW = f"{GROUP}/run-now"
__version__ = "0.1.0"
