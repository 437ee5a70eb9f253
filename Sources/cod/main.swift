print("cod")
