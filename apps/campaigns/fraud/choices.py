from django.db import models


class FraudAction(models.TextChoices):
    FLAG = "flag", "Flag the customer (new points held until reviewed)"
    HOLD_POINTS = "hold_points", "Hold this event's points pending review"
    BLOCK = "block", "Block the customer"
    REFUSE_REFERRAL = "refuse_referral", "Refuse the referral (bonuses taken back)"
    NONE = "none", "Only open a review case"


class FraudTrigger(models.TextChoices):
    CUSTOMER_REGISTERED = "customer.registered", "A customer signs up"
    ORDER_CREATED = "order.created", "An order is placed"
    REFERRAL_REGISTERED = "referral.registered", "A referral is registered"
    VOUCHER_REDEEMED = "voucher.redeemed", "A promotion code is redeemed"
    MEMBER_JOINED = "member.joined", "A customer joins the loyalty program"


class FraudCaseStatus(models.TextChoices):
    OPEN = "open", "Waiting for review"
    APPROVED = "approved", "Approved (not fraud)"
    REJECTED = "rejected", "Rejected (fraud confirmed)"
