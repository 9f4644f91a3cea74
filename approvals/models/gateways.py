from django.db import models


class GatewayToolLimit(models.Model):
    """Limits one gateway token to the tools that gateway fronts. A token without a limit may ask about any tool."""

    token = models.OneToOneField("knox.AuthToken", on_delete=models.CASCADE, related_name="tool_limit")
    tools = models.ManyToManyField("inventory.AITool", related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"tool limit for token {self.token_id}"
