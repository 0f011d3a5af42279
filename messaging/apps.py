from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    label = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from consent.signals import consent_withdrawn
        from messaging.services import messages_cancel_on_withdrawal

        def cancel_queued(sender: type, **kwargs: object) -> None:
            messages_cancel_on_withdrawal(**kwargs)  # type: ignore[arg-type]

        # A withdrawal stops what is still waiting in the outbox at once (CON-2); dispatch's
        # own eligibility decision remains the guarantee (MSG-5).
        consent_withdrawn.connect(
            cancel_queued, weak=False, dispatch_uid="messaging.cancel_on_withdrawal"
        )
