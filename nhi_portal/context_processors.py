from . import roles as portal_roles


def roles(request):
    user = request.user
    return {
        "is_security": portal_roles.is_security(user),
        "is_manager": portal_roles.is_manager(user),
        "may_write": portal_roles.may_write(user),
    }
