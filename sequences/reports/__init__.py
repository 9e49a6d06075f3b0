"""The revenue view: conversion facts, report aggregates, funnel, attribution and holdout.

A Django app of its own (label `reports`) inside sequences, so its tables and
migrations stay apart from the sequence engine's. docs/reporting.md explains each number.
"""
