# placeholder


def blog_targets():
    return []
