from tests.automations.test_engine_support import fire, queue
from tests.connectors.support import deliver, pushing, shop, woo_shop

__all__ = ["deliver", "fire", "pushing", "queue", "shop", "woo_shop"]
from tests.connectors.fake_shop import fake_shop

__all__ += ["fake_shop"]
