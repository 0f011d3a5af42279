from django.http import HttpResponse


def lockout_response(request, *args, **kwargs):
    return HttpResponse("locked", status=429)


def dashboard(request):
    return HttpResponse("dashboard")
