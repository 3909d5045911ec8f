"""Every table of the product in one MetaData: the core models and each feature's own.

Importing this module registers all models; Alembic and the tests compare against it.
"""

from callcenter import models, workspace_models
from callcenter.analytics import models as analytics_models
from callcenter.automation import models as automation_models
from callcenter.channels.email import models as email_models
from callcenter.channels.telegram import models as telegram_models
from callcenter.channels.telephony import models as telephony_models
from callcenter.classify import models as classify_models
from callcenter.crm import models as crm_models

metadata = models.Base.metadata
FEATURE_MODELS = (
    analytics_models,
    automation_models,
    classify_models,
    crm_models,
    email_models,
    telegram_models,
    telephony_models,
    workspace_models,
)
