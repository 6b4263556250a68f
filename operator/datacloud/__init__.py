"""datacloud: the operator of Fujian's provincial public-data compute infrastructure."""

GROUP = "datacloud.fujian.gov.cn"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
__version__ = "0.1.0"
