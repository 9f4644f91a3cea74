"""The home page: one URL, one page per role. Each reads its to-do list in a fixed number of queries."""

from django.shortcuts import render
from django.utils import timezone

from nhi_portal import roles
from nhi_portal.decorators import portal_page

from . import manager, owner, security


@portal_page
def home(request):
    now = timezone.now()
    user = request.user
    if roles.is_security(user):
        return render(request, "home/security.html", security.security_home(user=user, now=now))
    if roles.is_manager(user):
        return render(request, "home/manager.html", manager.manager_home(now=now))
    return render(request, "home/owner.html", owner.owner_home(user=user, now=now))
