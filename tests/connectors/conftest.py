from tests.automations.test_engine_support import fire, queue
from tests.connectors.support import deliver, shop, woo_shop

__all__ = ["deliver", "fire", "queue", "shop", "woo_shop"]
from tests.connectors.fake_shop import fake_shop

__all__ += ["fake_shop"]
