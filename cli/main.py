def main():
    print("hwnas")
