"""Test stand-in for the ClearML server image (apiserver, fileserver, webserver): not the product."""
